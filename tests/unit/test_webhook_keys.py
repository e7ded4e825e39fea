"""The outbox keyspace: one Redis Cluster slot for every key a Lua script touches."""

from __future__ import annotations

from redis import crc

from imagegen.gateway.webhooks import keys


def test_every_outbox_key_carries_the_hash_tag_and_lands_in_one_slot() -> None:
    names = [
        keys.stream(),
        keys.retries(),
        keys.attempts(),
        keys.delivery("msg_0123"),
        keys.emitted(
            batch_uid="6f1c0a4e-0000-4000-8000-000000000001", event_type="batch.progress", step=3
        ),
        keys.disabled(tenant="acme", url="https://hooks.example.com/x?token=secret"),
    ]

    assert all("{webhooks}" in name for name in names)
    assert len({crc.key_slot(name.encode()) for name in names}) == 1


def test_a_disabled_endpoint_key_holds_a_digest_not_the_url() -> None:
    name = keys.disabled(tenant="acme", url="https://hooks.example.com/x?token=secret")

    assert "token" not in name
    assert "hooks.example.com" not in name
