"""Webhook URLs checked at submit by a live `imagegen gateway`: every special-purpose
address (by literal or by the name's answer) is a 422 naming `webhook.url` and creates
nothing; a resolver that fails for a moment or does not answer in time is a 503 with
Retry-After that a retry with the same Idempotency-Key gets past, and a name that does not
exist is a 422. The names are answered by a DNS server of the test that the gateway's own
resolver (glibc) asks, in a mount namespace where /etc/resolv.conf names it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import lightkube
import pytest

from imagegen.gateway.routes import batches
from imagegen.localcluster import cluster, redis, stack
from tests.integration import fakedns, gatewayproc, operatorproc, tenantworld
from tests.integration.conftest import GATEWAY_REDIS_DB, GATEWAY_WEBHOOK_HOST
from tests.integration.gatewayworld import GatewayWorld, items

SUBMIT = "/api/v1/batches"
CHECK_SECONDS = 2.0
"""The DNS gateway's webhook_check_seconds: shorter than glibc's own timeout below, so a
silent resolver is given up on by the gateway, as a slow one in production would be."""
GLIBC_TIMEOUT_SECONDS = 10

SPECIAL_PURPOSE_URLS = [
    "http://[fec0::1]/hook",  # site-local (deprecated, still routed in places)
    "http://[feff::1]/hook",
    "http://168.63.129.16/machine",  # Azure wire server, in a public range
    "http://169.254.169.254/latest/meta-data",  # AWS, GCP, Azure, Oracle, OpenStack
    "http://[fd00:ec2::254]/latest/meta-data",  # AWS over IPv6
    "http://[fd20:ce::254]/computeMetadata/v1/",  # GCP over IPv6
    "http://100.100.100.200/latest/meta-data",  # Alibaba Cloud
    "http://169.254.170.2/v2/credentials",  # AWS ECS
    "http://169.254.170.23/v1/credentials",  # AWS EKS Pod Identity
    "http://192.0.0.192/opc/v2/",  # Oracle Cloud
    "http://[::ffff:169.254.169.254]/latest",  # IPv4-mapped IPv6
    "http://[::ffff:10.0.0.1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::127.0.0.1]/hook",  # IPv4-compatible (deprecated)
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of the metadata address
    "http://[64:ff9b::10.0.0.1]/hook",  # NAT64 of private space
    "http://[64:ff9b:1::a00:1]/hook",  # local-use NAT64
    "http://[2002:a00:1::1]/hook",  # 6to4 of 10.0.0.1
    "http://[2002:a9fe:a9fe::1]/hook",  # 6to4 of the metadata address
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
    "http://169.254.1.1/hook",  # link-local
    "http://[fe80::1]/hook",
    "http://100.64.0.1/hook",  # CGNAT
    "http://100.127.255.254/hook",
    "http://0.1.2.3/hook",  # 0.0.0.0/8
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://224.0.0.1/hook",  # multicast
    "http://239.255.255.250/hook",
    "http://[ff02::1]/hook",
    "http://255.255.255.255/hook",  # broadcast
    "http://240.0.0.1/hook",  # reserved
    "http://198.18.0.1/hook",  # benchmarking
    "http://192.0.2.1/hook",  # documentation
    "http://[2001:db8::1]/hook",
    "http://[3fff::1]/hook",
    "http://192.0.0.8/hook",  # IETF protocol assignments
    "http://192.88.99.1/hook",  # 6to4 relay anycast
    "http://[fd12:3456::1]/hook",  # unique local
    "http://[100::1]/hook",  # discard-only
]


def submit(http: httpx.Client, url: str, **headers: str) -> httpx.Response:
    return http.post(SUBMIT, json={"items": items(1), "webhook": {"url": url}}, headers=headers)


def refusal(reply: httpx.Response) -> tuple[int, list[str]]:
    """The status and the fields a problem names."""
    body: dict[str, Any] = reply.json()
    return reply.status_code, [error["field"] for error in body.get("errors", [])]


def test_a_webhook_to_any_special_purpose_address_is_refused_naming_webhook_url(
    gateway_world: GatewayWorld,
) -> None:
    name, key = gateway_world.ready_tenant("ssrf", requests_per_minute=600, burst=200)
    with gateway_world.client(key) as http:
        answers = {url: refusal(submit(http, url)) for url in SPECIAL_PURPOSE_URLS}

    wrong = {url: answer for url, answer in answers.items() if answer != (422, ["webhook.url"])}
    assert wrong == {}
    assert gateway_world.batches(name) == []


@pytest.fixture(scope="module")
def dns() -> Iterator[fakedns.FakeDns]:
    server = fakedns.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dns_gateway(
    dns: fakedns.FakeDns,
    local_stack: stack.LocalStack,
    running_operator: operatorproc.OperatorProcess,
    redis_server: redis.LocalRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[gatewayproc.GatewayProcess]:
    """A gateway whose resolver asks `dns` (a replica of the session's: same Redis, same
    key index), with webhook delivery left to the session's gateway."""
    workdir = tmp_path_factory.mktemp("dns-gateway")
    kubeconfig = gatewayproc.service_account_kubeconfig(
        management=local_stack.management, workdir=workdir
    )
    resolv_conf = dns.resolv_conf(workdir / "resolv.conf", timeout_seconds=GLIBC_TIMEOUT_SECONDS)
    gateway = gatewayproc.GatewayProcess(
        kubeconfig=kubeconfig,
        redis_url=f"redis://127.0.0.1:{redis_server.port}/{GATEWAY_REDIS_DB}",
        workdir=workdir,
        webhook_allowlist=(GATEWAY_WEBHOOK_HOST,),
        extra_settings={
            "webhooks_enabled": False,
            "timeouts": {"webhook_check_seconds": CHECK_SECONDS},
        },
        command_prefix=fakedns.isolated_resolver(resolv_conf),
    )
    gateway.start()
    yield gateway
    gateway.stop()
    assert "Traceback" not in gateway.log(), gateway.log()[-4000:]


@pytest.fixture
def dns_world(
    kube: lightkube.Client,
    regions: dict[str, cluster.LocalCluster],
    dns_gateway: gatewayproc.GatewayProcess,
) -> GatewayWorld:
    return GatewayWorld(world=tenantworld.World(kube=kube, regions=regions), gateway=dns_gateway)


def hook_name(dns: fakedns.FakeDns, answer: fakedns.Answer) -> str:
    """A fresh name under hooks.test that the test DNS answers with `answer`."""
    name = f"h{uuid.uuid4().hex[:8]}.hooks.test"
    dns.names[name] = answer
    return name


def test_a_name_that_resolves_to_the_allowlisted_receiver_is_accepted(
    dns_world: GatewayWorld, dns: fakedns.FakeDns
) -> None:
    name, key = dns_world.ready_tenant("dnsok")
    host = hook_name(dns, (GATEWAY_WEBHOOK_HOST,))
    with dns_world.client(key) as http:
        reply = submit(http, f"http://{host}:9/hooks/imagegen")

    assert reply.status_code == 202, reply.text
    assert (host, "A") in dns.asked
    assert len(dns_world.batches(name)) == 1


@pytest.mark.parametrize(
    "answer",
    [
        ("fec0::1",),
        ("168.63.129.16",),
        ("fd00:ec2::254",),
        ("::ffff:10.0.0.1",),
        ("100.64.0.1",),
        ("203.0.113.9", GATEWAY_WEBHOOK_HOST, "10.1.2.3"),  # one bad answer among others
    ],
    ids=lambda answer: answer[-1],
)
def test_a_name_that_resolves_to_a_special_purpose_address_is_refused_naming_webhook_url(
    dns_world: GatewayWorld, dns: fakedns.FakeDns, answer: tuple[str, ...]
) -> None:
    name, key = dns_world.ready_tenant("dnsbad")
    host = hook_name(dns, answer)
    with dns_world.client(key) as http:
        reply = submit(http, f"http://{host}/hook")

    assert refusal(reply) == (422, ["webhook.url"]), reply.text
    assert f"{host} resolves to " in reply.json()["detail"]
    assert dns_world.batches(name) == []


def test_a_name_that_does_not_exist_is_refused_naming_webhook_url(
    dns_world: GatewayWorld, dns: fakedns.FakeDns
) -> None:
    name, key = dns_world.ready_tenant("dnsnx")
    host = hook_name(dns, fakedns.Rcode.NXDOMAIN)
    with dns_world.client(key) as http:
        reply = submit(http, f"http://{host}/hook")

    assert refusal(reply) == (422, ["webhook.url"]), reply.text
    assert "does not resolve" in reply.json()["detail"]
    assert "Retry-After" not in reply.headers
    assert dns_world.batches(name) == []


@pytest.mark.parametrize(
    ("failure", "detail"),
    [
        (fakedns.Rcode.SERVFAIL, "did not resolve for now"),
        (fakedns.Rcode.SILENT, f"did not resolve within {CHECK_SECONDS:g}s"),
    ],
    ids=["servfail", "no-answer"],
)
def test_a_resolver_that_fails_or_is_slow_is_a_503_to_retry_and_the_retry_gets_through(
    dns_world: GatewayWorld, dns: fakedns.FakeDns, failure: fakedns.Rcode, detail: str
) -> None:
    name, key = dns_world.ready_tenant("dnsslow")
    host = hook_name(dns, failure)
    attempt = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}
    with dns_world.client(key) as http:
        unresolved = submit(http, f"http://{host}:9/hooks/imagegen", **attempt)
        dns.names[host] = (GATEWAY_WEBHOOK_HOST,)  # the resolver is back
        retried = submit(http, f"http://{host}:9/hooks/imagegen", **attempt)

    assert unresolved.status_code == 503, unresolved.text
    assert unresolved.headers["Retry-After"] == str(batches.WEBHOOK_RECHECK_SECONDS)
    assert unresolved.json()["type"].endswith("/webhook-host-unresolved")
    assert detail in unresolved.json()["detail"]
    assert retried.status_code == 202, retried.text
    assert [b["metadata"]["name"] for b in dns_world.batches(name)] == [retried.json()["id"]]
