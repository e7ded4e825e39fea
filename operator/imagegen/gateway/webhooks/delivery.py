"""One HTTP POST of a webhook, to exactly the addresses the SSRF guard checked.

The URL keeps its host name, so the Host header and the TLS server name (SNI and
certificate check) are the receiver's; only the resolution is pinned, through a resolver
that answers with the checked addresses and nothing else. No redirects, no proxies from
the environment, a fresh connection per attempt, a hard total timeout.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket

import aiohttp
from aiohttp import abc as aiohttp_abc

from imagegen import retryafter
from imagegen.gateway.webhooks import ssrf

TIMEOUT_SECONDS = 15.0
USER_AGENT = "imagegen-webhooks/1"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Response:
    """What came back: a status (and Retry-After), or why nothing did."""

    status: int | None = None
    retry_after: float | None = None
    error: str = ""


async def post(
    *,
    target: ssrf.Target,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> Response:
    """POST `body` to `url`, connecting only to `target.addresses`."""
    connector = aiohttp.TCPConnector(
        resolver=_PinnedResolver(target), use_dns_cache=False, force_close=True
    )
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        trust_env=False,
    )
    request_headers = {
        **headers,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    try:
        async with (
            session,
            session.post(
                url, data=body, headers=request_headers, allow_redirects=False
            ) as response,
        ):
            retry_after = retryafter.seconds(response.headers.get("Retry-After"))
            return Response(status=response.status, retry_after=retry_after)
    except TimeoutError:
        return Response(error=f"no response within {timeout_seconds:g}s")
    except aiohttp.ClientError as error:
        return Response(error=f"{type(error).__name__}: {error}")


class _PinnedResolver(aiohttp_abc.AbstractResolver):
    """Answers for the checked host with the checked addresses only."""

    def __init__(self, target: ssrf.Target) -> None:
        self._target = target

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp_abc.ResolveResult]:
        if host.rstrip(".").lower() != self._target.host.lower():
            raise OSError(f"{host} is not the checked webhook host")
        results: list[aiohttp_abc.ResolveResult] = []
        for address in self._target.addresses:
            v6 = ipaddress.ip_address(address).version == 6
            found = socket.AF_INET6 if v6 else socket.AF_INET
            if family in (socket.AF_UNSPEC, found):
                results.append(
                    aiohttp_abc.ResolveResult(
                        hostname=host,
                        host=address,
                        port=port,
                        family=found,
                        proto=0,
                        flags=socket.AI_NUMERICHOST,
                    )
                )
        if not results:
            raise OSError(f"{host}: no checked address of family {family!r}")
        return results

    async def close(self) -> None:
        """Nothing to release."""
