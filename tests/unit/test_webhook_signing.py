"""Standard Webhooks signatures, as a receiver checks them."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from imagegen.gateway.webhooks import signing

# The test vector published with the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specifications_published_vector_is_reproduced() -> None:
    assert (
        signing.signature(
            secret=SPEC_SECRET, msg_id=SPEC_ID, timestamp=SPEC_TIMESTAMP, body=SPEC_BODY
        )
        == SPEC_SIGNATURE
    )


def test_a_vector_built_by_hand_from_the_spec_matches() -> None:
    # The spec: key = base64-decode(secret after "whsec_"); content = "id.timestamp.body";
    # header = "v1," + base64(HMAC-SHA256(key, content)).
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    content = b"msg_hand.1700000000." + b'{"type":"batch.completed"}'
    expected = "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()

    assert (
        signing.signature(
            secret=secret,
            msg_id="msg_hand",
            timestamp=1700000000,
            body=b'{"type":"batch.completed"}',
        )
        == expected
    )


def test_signed_headers_verify_round_trip() -> None:
    secret = signing.new_secret()
    body = b'{"type":"batch.started"}'
    headers = signing.headers(secret=secret, msg_id="msg_1", timestamp=1000, body=body)

    signing.verify(secret=secret, headers=headers, body=body, now=1010)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": b'{"type":"batch.failed"}'}, "no webhook-signature matches"),
        ({"secret": signing.new_secret()}, "no webhook-signature matches"),
        ({"now": 1000 + signing.TOLERANCE_SECONDS + 1}, "outside the tolerance"),
    ],
)
def test_a_changed_body_another_secret_or_an_old_timestamp_fail(
    change: dict[str, object], reason: str
) -> None:
    secret = signing.new_secret()
    body = b'{"type":"batch.started"}'
    headers = signing.headers(secret=secret, msg_id="msg_1", timestamp=1000, body=body)
    arguments: dict[str, object] = {"secret": secret, "body": body, "now": 1000, **change}

    with pytest.raises(signing.InvalidSignatureError, match=reason):
        signing.verify(headers=headers, **arguments)  # type: ignore[arg-type]


def test_any_of_several_signatures_may_match_during_a_secret_rotation() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = b"{}"
    both = " ".join(
        signing.signature(secret=s, msg_id="m", timestamp=5, body=body) for s in (old, new)
    )
    headers = {"Webhook-Id": "m", "Webhook-Timestamp": "5", "Webhook-Signature": both}

    signing.verify(secret=new, headers=headers, body=body, now=5)


def test_new_secrets_are_whsec_with_32_random_bytes() -> None:
    first, second = signing.new_secret(), signing.new_secret()

    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second


def test_a_secret_without_the_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        signing.signature(secret="MfKQ9r8GKYqrTwjU", msg_id="m", timestamp=1, body=b"")
