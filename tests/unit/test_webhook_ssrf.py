"""The SSRF guard: which webhook URLs may be called, decided before submit and again
before every send."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import pytest

from imagegen.gateway.webhooks import ssrf


def resolving_to(*addresses: str) -> ssrf.Resolver:
    """A resolver that answers every host with `addresses`."""

    async def resolve(host: str, port: int) -> Sequence[str]:
        return list(addresses)

    return resolve


async def never_answers(host: str, port: int) -> Sequence[str]:
    await asyncio.Event().wait()
    return []


async def fails(host: str, port: int) -> Sequence[str]:
    raise OSError("Name or service not known")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://10.0.0.1/hook", "private"),
        ("http://192.168.1.20/hook", "private"),
        ("http://172.16.0.5/hook", "private"),
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://[fd12:3456::1]/hook", "private"),
        ("http://100.64.0.1/hook", "CGNAT"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[::ffff:169.254.169.254]/hook", "cloud metadata"),
        ("http://[64:ff9b::a9fe:a9fe]/hook", "cloud metadata"),
        ("http://[2002:0a00:0001::1]/hook", "private"),
        ("http://[fd00:ec2::254]/hook", "cloud metadata"),
        ("http://[fec0::1]/hook", "site-local"),
        ("http://[fef0::1]/hook", "site-local"),
        ("http://168.63.129.16/machine", "cloud metadata"),
        ("http://[::ffff:168.63.129.16]/machine", "cloud metadata"),
        ("http://0.1.2.3/hook", "private"),
        ("http://255.255.255.255/hook", "private"),
        ("http://240.0.0.1/hook", "private"),
        ("http://198.18.0.1/hook", "private"),
        ("http://192.0.2.1/hook", "private"),
        ("http://192.0.0.8/hook", "IETF protocol assignment"),
        ("http://192.88.99.1/hook", "6to4 relay anycast"),
        ("http://[3fff::1]/hook", "documentation"),
        ("http://[2001:db8::1]/hook", "private"),
        ("http://[ff02::1]/hook", "multicast"),
        ("http://[::ffff:0.0.0.0]/hook", "unspecified"),
        ("http://[::127.0.0.1]/hook", "reserved"),
        ("http://[64:ff9b::7f00:1]/hook", "loopback"),
        ("http://[64:ff9b:1::a00:1]/hook", "reserved"),
        ("http://[2002:a9fe:a9fe::1]/hook", "cloud metadata"),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", "private"),
        ("http://100.100.100.200/latest/meta-data", "cloud metadata"),
        ("http://[fd20:ce::254]/computeMetadata/v1/", "cloud metadata"),
        ("http://[fd00:c1::a9fe:a9fe]/opc/v2/", "cloud metadata"),
        ("http://169.254.170.23/v1/credentials", "cloud metadata"),
    ],
)
async def test_internal_addresses_are_refused(url: str, reason: str) -> None:
    with pytest.raises(ssrf.UnsafeWebhookURL, match=reason):
        await ssrf.check_url(url, allowlist=[])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com", "only http and https"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("https:///hook", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
    ],
)
async def test_other_schemes_credentials_and_malformed_urls_are_refused(
    url: str, reason: str
) -> None:
    with pytest.raises(ssrf.UnsafeWebhookURL, match=reason):
        await ssrf.check_url(url, allowlist=[], resolver=resolving_to("93.184.216.34"))


async def test_localhost_is_refused_without_the_allowlist_by_real_resolution() -> None:
    with pytest.raises(ssrf.UnsafeWebhookURL, match=r"localhost resolves to .* loopback"):
        await ssrf.check_url("http://localhost:9000/hook", allowlist=[])


async def test_a_hostname_that_resolves_to_loopback_is_refused() -> None:
    with pytest.raises(ssrf.UnsafeWebhookURL, match=r"hooks\.example\.com resolves to 127\.0"):
        await ssrf.check_url(
            "https://hooks.example.com/x", allowlist=[], resolver=resolving_to("127.0.0.1")
        )


async def test_one_internal_answer_among_public_ones_refuses_the_host() -> None:
    with pytest.raises(ssrf.UnsafeWebhookURL, match=r"10\.1\.2\.3"):
        await ssrf.check_url(
            "https://hooks.example.com/x",
            allowlist=[],
            resolver=resolving_to("93.184.216.34", "10.1.2.3"),
        )


async def test_a_public_host_is_accepted_with_the_addresses_to_connect_to() -> None:
    target = await ssrf.check_url(
        "https://Hooks.Example.com/x?t=1",
        allowlist=[],
        resolver=resolving_to("93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"),
    )

    assert target == ssrf.Target(
        scheme="https",
        host="hooks.example.com",
        port=443,
        addresses=("93.184.216.34", "2606:2800:220:1::1"),
    )


@pytest.mark.parametrize("allowlist", [["127.0.0.1"], ["127.0.0.0/8"], ["localhost"]])
async def test_an_allowlisted_loopback_receiver_is_accepted(allowlist: list[str]) -> None:
    target = await ssrf.check_url(
        "http://localhost:8123/hook", allowlist=allowlist, resolver=resolving_to("127.0.0.1")
    )

    assert (target.host, target.port, target.addresses) == ("localhost", 8123, ("127.0.0.1",))


async def test_the_allowlist_lets_through_only_what_it_names() -> None:
    await ssrf.check_url("http://127.0.0.1:1/", allowlist=["127.0.0.1"])
    with pytest.raises(ssrf.UnsafeWebhookURL, match="private"):
        await ssrf.check_url("http://10.0.0.1/", allowlist=["127.0.0.1"])


async def test_metadata_addresses_stay_refused_even_inside_an_allowlisted_network() -> None:
    with pytest.raises(ssrf.UnsafeWebhookURL, match="metadata"):
        await ssrf.check_url("http://169.254.169.254/", allowlist=["169.254.0.0/16"])


async def test_no_answer_or_a_failed_resolution_refuse_the_url() -> None:
    for resolver, reason in (
        (resolving_to(), "no address"),
        (fails, "does not resolve"),
        (resolving_to("not-an-ip"), "not an IP address"),
    ):
        with pytest.raises(ssrf.UnsafeWebhookURL, match=reason) as refused:
            await ssrf.check_url("https://hooks.example.com/", allowlist=[], resolver=resolver)
        assert not isinstance(refused.value, ssrf.ResolutionUnavailable)


async def test_a_resolver_that_does_not_answer_in_time_is_unavailable_not_a_verdict() -> None:
    with pytest.raises(ssrf.ResolutionUnavailable, match=r"did not resolve within 0\.05s"):
        await ssrf.check_url(
            "https://hooks.example.com/",
            allowlist=[],
            resolver=never_answers,
            resolve_timeout_seconds=0.05,
        )


def test_a_malformed_allowlist_entry_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33'"):
        ssrf.Allowlist.parse(["10.0.0.0/33"])


async def test_the_azure_wire_server_stays_refused_when_its_network_is_allowlisted() -> None:
    with pytest.raises(ssrf.UnsafeWebhookURL, match="metadata"):
        await ssrf.check_url("http://168.63.129.16/", allowlist=["168.63.0.0/16"])


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("fd00:ec2::253", "fd00::/8"),
        ("fd00:ec2::123", "fd00::/8"),
        ("fd00:ec2::23", "fd00::/8"),
        ("fd20:ce::254", "fc00::/7"),
        ("169.254.169.253", "169.254.0.0/16"),
        ("169.254.170.23", "169.254.0.0/16"),
        ("100.100.100.200", "100.64.0.0/10"),
    ],
)
async def test_platform_services_stay_refused_when_their_network_is_allowlisted(
    address: str, network: str
) -> None:
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(ssrf.UnsafeWebhookURL, match="metadata"):
        await ssrf.check_url(f"http://{host}/", allowlist=[network])


async def test_an_internationalised_host_is_checked_and_connected_to_in_its_idna_form() -> None:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return ["93.184.216.34"]

    target = await ssrf.check_url("https://Bücher.example/hook", allowlist=[], resolver=resolve)
    assert (target.host, asked) == ("xn--bcher-kva.example", ["xn--bcher-kva.example"])


@pytest.mark.parametrize(
    "url", ["http://\u0080x.example/", "http://" + "a" * 64 + ".example/", "http://a..b/"]
)
async def test_a_host_that_cannot_be_encoded_is_refused_not_an_error(url: str) -> None:
    with pytest.raises(ssrf.UnsafeWebhookURL):
        await ssrf.check_url(url, allowlist=[])


async def test_a_resolver_failing_for_a_moment_is_unavailable_not_a_verdict() -> None:
    async def again(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(ssrf.ResolutionUnavailable, match="for now"):
        await ssrf.check_url("https://hooks.example.com/", allowlist=[], resolver=again)
    with pytest.raises(ssrf.UnsafeWebhookURL) as refused:
        await ssrf.check_url("https://hooks.example.com/", allowlist=[], resolver=fails)
    assert not isinstance(refused.value, ssrf.ResolutionUnavailable)
