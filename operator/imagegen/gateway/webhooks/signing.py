"""Standard Webhooks signatures (https://www.standardwebhooks.com): what a receiver
checks to know a request came from us and was not replayed.

The signed content is `<webhook-id>.<webhook-timestamp>.<body>`; the signature is
HMAC-SHA256 with the secret's bytes (the base64 after `whsec_`), sent base64-encoded as
`v1,<signature>` in the `webhook-signature` header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the marker of the format, not a secret
SECRET_BYTES = 32
TOLERANCE_SECONDS = 300
"""How far a timestamp may be from the receiver's clock: the replay window."""


class InvalidSignatureError(ValueError):
    """A request whose signature or timestamp does not check out; str() says which."""


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form `whsec_<base64>`."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one message: `v1,<base64 HMAC-SHA256>`."""
    key = _key_bytes(secret)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(
            secret=secret, msg_id=msg_id, timestamp=timestamp, body=body
        ),
    }


def verify(
    *,
    secret: str,
    headers: dict[str, str],
    body: bytes,
    now: int,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Check a received webhook as a receiver should; raise InvalidSignatureError if it fails.

    Header names are matched case-insensitively; any one `v1` signature of the
    space-separated list may match (several are sent while a secret is rotated).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        offered = lowered["webhook-signature"].split()
    except (KeyError, ValueError) as error:
        raise InvalidSignatureError(f"missing or malformed webhook header: {error}") from None
    if abs(now - timestamp) > tolerance:
        raise InvalidSignatureError(f"webhook-timestamp {timestamp} is outside the tolerance")
    expected = signature(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise InvalidSignatureError("no webhook-signature matches")


def _key_bytes(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
