"""The SSRF guard: a webhook URL may only reach public addresses, or ones an operator
allowlisted on purpose.

The host is resolved here, every address it resolves to is checked, and the caller
connects to exactly those addresses (see `delivery`), so a DNS answer that changes
between the check and the connection (DNS rebinding) cannot reach anything unchecked.
Anything that cannot be decided is refused: for good when the answer says so (a name that
does not exist, a malformed URL), for now when the resolver failed for a moment or did not
answer in time (ResolutionUnavailable, which callers may retry).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence

import yarl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""(host, port) -> the IP addresses the host resolves to, as text."""

RESOLVE_TIMEOUT_SECONDS = 5.0
"""A resolver that has not answered by then is unavailable for now: refused, retryable."""

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, Oracle, OpenStack, DigitalOcean
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "169.254.169.253",  # AWS DNS resolver
        "fd00:ec2::253",  # AWS DNS resolver over IPv6
        "169.254.169.123",  # AWS time sync
        "fd00:ec2::123",  # AWS time sync over IPv6
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS Pod Identity Agent (credentials)
        "fd00:ec2::23",  # AWS EKS Pod Identity Agent over IPv6
        "fd20:ce::254",  # GCP metadata server over IPv6
        "168.63.129.16",  # Azure wire server (a public address that only the host answers)
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:c1::a9fe:a9fe",  # Oracle Cloud over IPv6
        "169.254.0.23",  # Tencent Cloud
    )
)
"""Cloud metadata and platform services: refused even when an allowlisted network
contains them; 168.63.129.16 is in a public range, so only this list stops it."""

SPECIAL_PURPOSE: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.ip_network("192.0.0.0/24"), "an IETF protocol assignment"),
    (ipaddress.ip_network("192.88.99.0/24"), "a 6to4 relay anycast address"),
    (ipaddress.ip_network("3fff::/20"), "a documentation address"),
)
"""Ranges of IANA's special-purpose registries that no webhook receiver lives in and that
the ipaddress module of some Python releases calls global (3.11 knows only parts of
192.0.0.0/24, and not RFC 9637's 3fff::/20)."""

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeWebhookURL(ValueError):  # noqa: N818 - the name the gateway codes against
    """A webhook URL that must not be called; str() says why."""


class ResolutionUnavailable(UnsafeWebhookURL):
    """The host could not be resolved just now (EAI_AGAIN, no answer in time): not a
    verdict on the URL, so a delivery is retried and a submission may be."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target:
    """A checked webhook URL: connect only to `addresses`, and send `host` as the Host
    header and TLS server name."""

    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


async def check_url(
    url: str,
    *,
    allowlist: Sequence[str],
    resolver: Resolver | None = None,
    resolve_timeout_seconds: float = RESOLVE_TIMEOUT_SECONDS,
) -> Target:
    """Check that `url` is http(s) and that its host resolves only to addresses that are
    public or allowlisted; return what to connect to, or raise UnsafeWebhookURL
    (ResolutionUnavailable when the resolver gave no verdict within the timeout)."""
    scheme, host, port = _parse(url)
    allowed = Allowlist.parse(allowlist)
    literal = _ip_or_none(host)
    if literal is not None:
        answers: Sequence[str] = [str(literal)]
    else:
        answers = await _resolve(
            host, port, resolver or system_resolver, timeout_seconds=resolve_timeout_seconds
        )
    addresses: list[str] = []
    for answer in answers:
        address = _ip_or_none(answer)
        if address is None:
            raise UnsafeWebhookURL(f"host {host} resolved to {answer!r}, not an IP address")
        if address not in allowed and not allowed.has_host(host):
            reason = unsafe_reason(address)
            if reason is not None:
                shown = host if literal is not None else f"{host} resolves to {address}, which"
                raise UnsafeWebhookURL(f"{shown} is {reason}; not allowed for webhooks")
        if address in METADATA_ADDRESSES or _embedded_v4(address) in METADATA_ADDRESSES:
            raise UnsafeWebhookURL(f"{host} is a cloud metadata address; never allowed")
        addresses.append(str(address))
    return Target(scheme=scheme, host=host, port=port, addresses=tuple(dict.fromkeys(addresses)))


def unsafe_reason(address: IPAddress) -> str | None:
    """Why an address must not be reached from a webhook, or None when it is public."""
    embedded = _embedded_v4(address)
    if embedded is not None:
        return unsafe_reason(embedded)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        ("unspecified", address.is_unspecified),
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        # Deprecated (RFC 3879) but still routed inside some networks; is_global says yes.
        ("a site-local address", getattr(address, "is_site_local", False)),
        ("a multicast address", address.is_multicast),
        ("a private address", address.is_private),
        ("a shared (CGNAT) address", address in ipaddress.ip_network("100.64.0.0/10")),
        ("a reserved address", address.is_reserved),
    )
    for reason, matches in checks:
        if matches:
            return reason
    for network, reason in SPECIAL_PURPOSE:
        if address in network:
            return reason
    # is_global is the last word: it also refuses the special-purpose ranges above miss.
    return None if address.is_global else "not a public address"


@dataclasses.dataclass(frozen=True)
class Allowlist:
    """Hosts (exact, case-insensitive), IP addresses and CIDR networks that webhooks may
    reach although they are not public, such as a receiver inside the cluster."""

    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> Allowlist:
        """Read the allowlist setting; a malformed entry is an error naming it."""
        hosts: set[str] = set()
        networks = []
        for entry in entries:
            text = entry.strip().lower().strip("[]")
            if not text:
                raise ValueError("webhook allowlist: empty entry")
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                if "/" in text or ":" in text:
                    raise ValueError(
                        f"webhook allowlist: {entry!r} is not a valid IP or CIDR"
                    ) from None
                hosts.add(text.rstrip("."))
        return cls(hosts=frozenset(hosts), networks=tuple(networks))

    def __contains__(self, address: object) -> bool:
        return isinstance(address, IPAddress) and any(address in net for net in self.networks)

    def has_host(self, host: str) -> bool:
        """Whether the host name itself was allowlisted."""
        return host.lower().rstrip(".") in self.hosts


async def system_resolver(host: str, port: int) -> list[str]:
    """The machine's resolver (getaddrinfo), as the addresses it answers."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _parse(url: str) -> tuple[str, str, int]:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
        # The host as aiohttp resolves and sends it: an internationalised name in its IDNA
        # (ASCII) form, so that the pinned resolver recognises it at delivery.
        raw_host = yarl.URL(url).raw_host if parts.hostname else ""
    except ValueError as error:  # UnicodeError too: a name IDNA cannot encode
        raise UnsafeWebhookURL(f"not a valid URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UnsafeWebhookURL(f"scheme {scheme or '(none)'!r}: only http and https are allowed")
    if parts.username is not None or parts.password is not None:
        raise UnsafeWebhookURL("credentials in the URL are not allowed; verify signatures instead")
    host = (raw_host or "").rstrip(".").lower()
    if not host:
        raise UnsafeWebhookURL("the URL has no host")
    return scheme, host, port or _DEFAULT_PORTS[scheme]


async def _resolve(
    host: str, port: int, resolver: Resolver, *, timeout_seconds: float
) -> Sequence[str]:
    try:
        answers = await asyncio.wait_for(resolver(host, port), timeout_seconds)
    except TimeoutError:
        raise ResolutionUnavailable(
            f"host {host} did not resolve within {timeout_seconds:g}s"
        ) from None
    except OSError as error:
        if isinstance(error, socket.gaierror) and error.errno == socket.EAI_AGAIN:
            raise ResolutionUnavailable(f"host {host} did not resolve for now: {error}") from None
        raise UnsafeWebhookURL(f"host {host} does not resolve: {error}") from None
    except UnicodeError as error:  # getaddrinfo encodes the name itself
        raise UnsafeWebhookURL(f"host {host} cannot be encoded as a host name: {error}") from None
    if not answers:
        raise UnsafeWebhookURL(f"host {host} resolves to no address")
    return answers


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        # A scoped IPv6 answer ("fe80::1%eth0") is still link-local: drop the scope.
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _embedded_v4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried inside an IPv6 one (mapped, 6to4, NAT64), if any: the
    packet ends up there, so that is the address to judge."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
