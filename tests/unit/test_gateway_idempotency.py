"""The batch name an Idempotency-Key stands for: the same for a retry, another for any
other tenant or key, and always a valid object name."""

import re

from imagegen.gateway import idempotency

NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def test_a_retry_with_the_same_key_names_the_same_batch() -> None:
    assert idempotency.batch_name(tenant="acme", key="k1") == idempotency.batch_name(
        tenant="acme", key="k1"
    )


def test_another_tenant_or_key_names_another_batch() -> None:
    names = {
        idempotency.batch_name(tenant=tenant, key=key)
        for tenant, key in (("acme", "k1"), ("acme", "k2"), ("other", "k1"), ("acme\nk", "1"))
    }
    assert len(names) == 4


def test_any_key_gives_a_valid_object_name() -> None:
    for key in ("k", "ключ/🔑 " * 30, "x" * idempotency.MAX_KEY_LENGTH):
        assert NAME.fullmatch(idempotency.batch_name(tenant="acme", key=key))
