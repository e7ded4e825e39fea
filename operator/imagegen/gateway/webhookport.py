"""The gateway's one door to webhook delivery, which lives in gateway/webhooks/ (built on
its own branch). Until that package is merged, this module stands in for it with a
submit-time URL check and no delivery service; the merge replaces everything below the
docstring with:

    from imagegen.gateway.webhooks.service import WebhookService
    from imagegen.gateway.webhooks.ssrf import UnsafeWebhookURL, check_url

and sets WEBHOOK_SERVICE = WebhookService.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse
from collections.abc import Sequence
from typing import Any, Protocol


class WebhookServiceLike(Protocol):
    """What the app's lifespan needs of the delivery service."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class UnsafeWebhookURL(ValueError):  # noqa: N818 (the name the webhooks package uses)
    """A webhook URL the gateway must not call; str() says why."""


WEBHOOK_SERVICE: Any = None
"""The delivery service class, once gateway/webhooks is merged."""


async def check_url(url: str, *, allowlist: Sequence[str]) -> None:
    """Refuse URLs that are not http(s) or whose host resolves to a non-public address
    (private, loopback, link-local, metadata), unless the host is allowlisted. Fails
    closed: a host that does not resolve is refused."""
    try:
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port
    except ValueError as error:
        raise UnsafeWebhookURL(f"not a valid URL: {error}") from error
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UnsafeWebhookURL("only http and https URLs with a host are allowed")
    host = parsed.hostname
    if host in allowlist:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port or 443, type=socket.SOCK_STREAM
        )
    except UnicodeError as error:
        raise UnsafeWebhookURL("the host is not a valid host name") from error
    except OSError as error:
        raise UnsafeWebhookURL(f"{host} does not resolve ({error.strerror})") from error
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if str(address) in allowlist:
            continue
        if not address.is_global:
            raise UnsafeWebhookURL(f"{host} resolves to {address}, a non-public address")
