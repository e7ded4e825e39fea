"""Fixtures for integration tests: real control planes built from Go modules and a real
redis-server, started once per test session on free loopback ports."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator

import lightkube
import pytest
import redis.asyncio as aioredis

from imagegen import redisconn
from imagegen.api import redisconfig
from imagegen.kube import clients
from imagegen.localcluster import (
    build,
    cluster,
    install,
    operatorsetup,
    redis,
    rediscluster,
    s3server,
    stack,
)
from tests.integration import (
    argocdproc,
    gatewayproc,
    gatewayworld,
    helmtool,
    operatorproc,
    s3fixtures,
    tenantworld,
    webhookreceiver,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
CRD_NAMES = ("tenants.imagegen.semantest.io", "imagebatches.imagegen.semantest.io")


@pytest.fixture(scope="session")
def binaries() -> dict[str, pathlib.Path]:
    """The control-plane binaries; `make test` builds them before pytest starts."""
    return build.ensure_built()


@pytest.fixture(scope="session")
def local_stack(
    binaries: dict[str, pathlib.Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[stack.LocalStack]:
    """One management cluster and the three regional clusters, started together; the
    regions run worker pods on simulated nodes, with the metrics API and a fast HPA."""
    started = stack.start(
        workdir=tmp_path_factory.mktemp("stack"),
        binaries=binaries,
        region_options=stack.SCALING_REGION,
    )
    yield started
    started.stop()


@pytest.fixture(scope="session")
def management(local_stack: stack.LocalStack) -> cluster.LocalCluster:
    """The management cluster, where Tenants and ImageBatches live."""
    return local_stack.management


@pytest.fixture(scope="session")
def regions(local_stack: stack.LocalStack) -> dict[str, cluster.LocalCluster]:
    """The regional clusters by region name."""
    return local_stack.regions


@pytest.fixture(scope="session")
def kube(management: cluster.LocalCluster) -> Iterator[lightkube.Client]:
    """An admin client of the management cluster."""
    with clients.sync_client(kubeconfig=management.kubeconfig) as client:
        yield client


@pytest.fixture
async def management_async(
    management: cluster.LocalCluster,
) -> AsyncIterator[lightkube.AsyncClient]:
    """An admin asyncio client of the management cluster, for tests of async code."""
    client = clients.async_client(kubeconfig=management.kubeconfig)
    yield client
    await client.close()


@pytest.fixture(scope="session")
def crds_installed(kube: lightkube.Client) -> None:
    """The committed CRDs, installed and Established in the management cluster."""
    install.apply_files(client=kube, paths=(REPO / "crds").glob("*.yaml"))
    install.wait_crds_established(client=kube, names=CRD_NAMES)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.LocalRedis]:
    """A real redis-server on a free port."""
    server = redis.start(workdir=tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def s3_server(tmp_path: pathlib.Path) -> Iterator[s3server.LocalS3]:
    """A real S3-compatible server (versitygw) of the test's own, bucket `images`."""
    server = s3server.start(binary=s3fixtures.binary(), workdir=tmp_path / "s3")
    yield server
    server.stop()


SCRATCH_DB = 9
"""The database of the session's redis-server that queue and worker tests flush and use."""


@pytest.fixture
async def scratch_redis(redis_server: redis.LocalRedis) -> AsyncIterator[aioredis.Redis]:
    """A text client of the scratch database, flushed first."""
    client = aioredis.Redis(
        host="127.0.0.1", port=redis_server.port, db=SCRATCH_DB, decode_responses=True
    )
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.LocalTlsRedis]:
    """A real redis-server that serves TLS with a certificate of a private CA and asks for
    a password, as a managed production Redis does."""
    server = redis.start_tls(workdir=tmp_path_factory.mktemp("redis-tls"), password="tls-s3cret")
    yield server
    server.stop()


def tls_credentials(server: redis.LocalTlsRedis) -> redisconn.Credentials:
    """What a client of the TLS Redis needs: its password and its private CA."""
    return redisconn.Credentials(password=server.password, ca_pem=server.pki.ca_cert.read_text())


@pytest.fixture(scope="session")
def redis_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[rediscluster.LocalRedisCluster]:
    """A real 12-node Redis Cluster (6 primaries, a replica each), started once (~3 s)."""
    started = rediscluster.start(workdir=tmp_path_factory.mktemp("redis-cluster"))
    yield started
    started.stop()


@pytest.fixture(params=["single-node", "cluster"])
def any_redis_url(request: pytest.FixtureRequest, redis_server: redis.LocalRedis) -> str:
    """Once the scratch database of the single node, once the 12-node Redis Cluster."""
    if request.param == "cluster":
        found: rediscluster.LocalRedisCluster = request.getfixturevalue("redis_cluster")
        return found.url
    return f"redis://127.0.0.1:{redis_server.port}/{SCRATCH_DB}"


async def empty_redis(url: str, *, decode_responses: bool) -> redisconn.Client:
    """A client of `url` built by the processes' own factory, its data emptied first."""
    client = redisconn.connect(
        redisconfig.RedisSettings(url=url), decode_responses=decode_responses
    )
    # FLUSHALL on a cluster client goes to every primary; on the single node it would also
    # empty the other tests' databases, so there only the scratch database is emptied.
    await (client.flushall() if url.startswith("redis+cluster") else client.flushdb())
    return client


@pytest.fixture
async def any_redis(any_redis_url: str) -> AsyncIterator[redisconn.Client]:
    """A text client of an empty Redis: one node, then the 12-node Redis Cluster."""
    client = await empty_redis(any_redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def region_redis(
    local_stack: stack.LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, redis.LocalRedis]]:
    """A real redis-server per region, as production has."""
    servers: dict[str, redis.LocalRedis] = {}
    try:
        for name in local_stack.regions:
            servers[name] = redis.start(workdir=tmp_path_factory.mktemp(f"redis-{name}"))
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def region_stores(
    local_stack: stack.LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, s3server.LocalS3]]:
    """A real S3-compatible server (versitygw) per region, each with its own keys."""
    servers: dict[str, s3server.LocalS3] = {}
    try:
        for name in local_stack.regions:
            servers[name] = s3server.start(
                binary=s3fixtures.binary(), workdir=tmp_path_factory.mktemp(f"s3-{name}")
            )
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def operator_setup(
    local_stack: stack.LocalStack,
    crds_installed: None,
    region_redis: dict[str, redis.LocalRedis],
    region_stores: dict[str, s3server.LocalS3],
    kube: lightkube.Client,
    tmp_path_factory: pytest.TempPathFactory,
) -> operatorsetup.OperatorSetup:
    """The operator's RBAC installed in every cluster, its ServiceAccount kubeconfigs and
    a configuration file with a short drift-check interval; each region's object store is
    its versitygw, its keys in a Secret of the operator's namespace."""
    setup = _operator_setup(
        local_stack=local_stack,
        region_redis=region_redis,
        region_stores=region_stores,
        workdir=tmp_path_factory.mktemp("operator"),
    )
    for name, server in region_stores.items():
        s3fixtures.apply_credentials_secret(
            client=kube, name=s3fixtures.secret_name(name), server=server
        )
    return setup


def _operator_setup(
    *,
    local_stack: stack.LocalStack,
    region_redis: dict[str, redis.LocalRedis],
    region_stores: dict[str, s3server.LocalS3],
    workdir: pathlib.Path,
) -> operatorsetup.OperatorSetup:
    return operatorsetup.prepare(
        local=local_stack,
        rbac_dir=REPO / "manifests" / "rbac",
        stores={
            name: server.config().model_copy(
                update={"credentials_secret": s3fixtures.secret_name(name)}
            )
            for name, server in region_stores.items()
        },
        redis_urls={name: server.url for name, server in region_redis.items()},
        workdir=workdir,
        config_overrides={
            "driftCheckSeconds": DRIFT_CHECK_SECONDS,
            "failoverAfterSeconds": FAILOVER_AFTER_SECONDS,
            # Test-only: a pool may drop to its minimum in one step once the Tenant's
            # stabilisation window has passed (production: 20 % per minute).
            "autoscaling": {"scaleDownPercentPerMinute": 100},
            # A named profile for test_worker_placement's GPU node pool, and only there.
            "profiles": {"test-gpu": TEST_GPU_PROFILE},
            "retentionCheckSeconds": RETENTION_CHECK_SECONDS,
            "cleanupSweepSeconds": CLEANUP_SWEEP_SECONDS,
        },
    )


DRIFT_CHECK_SECONDS = 3
TEST_GPU_POOL = {"imagegen.semantest.io/test-pool": "gpu"}
TEST_GPU_PROFILE = {
    "resources": {"requests": {"nvidia.com/gpu": "1"}},
    "nodeSelector": TEST_GPU_POOL,
    "tolerations": [
        {
            "key": "imagegen.semantest.io/test-pool",
            "operator": "Equal",
            "value": "gpu",
            "effect": "NoSchedule",
        }
    ],
}
RETENTION_CHECK_SECONDS = 2
CLEANUP_SWEEP_SECONDS = 2
FAILOVER_AFTER_SECONDS = 5


@pytest.fixture(scope="session")
def running_operator(
    operator_setup: operatorsetup.OperatorSetup, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[operatorproc.OperatorProcess]:
    """One operator for the session; tests that restart it leave it running."""
    operator = operatorproc.OperatorProcess(
        setup=operator_setup, log_path=tmp_path_factory.mktemp("operator-log") / "operator.log"
    )
    operator.start()
    yield operator
    operator.stop()


@pytest.fixture
def world(
    kube: lightkube.Client,
    local_stack: stack.LocalStack,
    running_operator: operatorproc.OperatorProcess,
) -> Iterator[tenantworld.World]:
    """The clusters as the running operator shapes them; its log must hold no traceback."""
    yield tenantworld.World(kube=kube, regions=local_stack.regions)
    assert "Traceback" not in running_operator.log(), running_operator.log()[-4000:]


@pytest.fixture
async def gateway_webhook_receiver() -> AsyncIterator[webhookreceiver.Receiver]:
    """A webhook receiver at the address the session's gateway allowlists."""
    started = webhookreceiver.Receiver(host=GATEWAY_WEBHOOK_HOST)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[webhookreceiver.Receiver]:
    """A webhook receiver on 127.0.0.1 that answers 200 unless scripted otherwise."""
    started = webhookreceiver.Receiver()
    await started.start()
    yield started
    await started.stop()


GATEWAY_WEBHOOK_HOST = "127.0.0.2"
"""The one address the session's gateway may send webhooks to: its receivers listen there,
while the webhook tests' own receivers on 127.0.0.1 stay out of the gateway's reach (its
producer sees every ImageBatch of the session, theirs included)."""

GATEWAY_REDIS_DB = 5
"""The database of the session's redis-server that the gateway keeps its state in."""

GATEWAY_CORS_ORIGIN = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
"""The one origin (a browser extension's) whose pages the session's gateway answers CORS."""


@pytest.fixture(scope="session")
def gateway_images(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The folder workers store images in and the gateway serves them from (the shared
    volume of a real deployment)."""
    return tmp_path_factory.mktemp("images")


@pytest.fixture(scope="session")
def running_gateway(
    local_stack: stack.LocalStack,
    operator_setup: operatorsetup.OperatorSetup,
    running_operator: operatorproc.OperatorProcess,
    redis_server: redis.LocalRedis,
    gateway_images: pathlib.Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[gatewayproc.GatewayProcess]:
    """One `imagegen gateway` for the session, under the gateway's ServiceAccount, with the
    operator running (it publishes the API-key index the gateway reads)."""
    workdir = tmp_path_factory.mktemp("gateway")
    kubeconfig = gatewayproc.service_account_kubeconfig(
        management=local_stack.management, workdir=workdir
    )
    gateway = gatewayproc.GatewayProcess(
        kubeconfig=kubeconfig,
        redis_url=f"redis://127.0.0.1:{redis_server.port}/{GATEWAY_REDIS_DB}",
        workdir=workdir,
        images_dir=gateway_images,
        webhook_allowlist=(GATEWAY_WEBHOOK_HOST,),
        extra_settings={"cors_origins": [GATEWAY_CORS_ORIGIN]},
    )
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture
def gateway_world(
    kube: lightkube.Client,
    regions: dict[str, cluster.LocalCluster],
    running_operator: operatorproc.OperatorProcess,
    running_gateway: gatewayproc.GatewayProcess,
) -> Iterator[gatewayworld.GatewayWorld]:
    """The management cluster and the running gateway; a test that left a traceback in
    the gateway's or the operator's log fails."""
    yield gatewayworld.GatewayWorld(
        world=tenantworld.World(kube=kube, regions=regions), gateway=running_gateway
    )
    assert "Traceback" not in running_gateway.log(), running_gateway.log()[-4000:]
    assert "Traceback" not in running_operator.log(), running_operator.log()[-4000:]


@pytest.fixture(scope="module")
def argocd_controllers(
    binaries: dict[str, pathlib.Path],
    local_stack: stack.LocalStack,
    kube: lightkube.Client,
    crds_installed: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[argocdproc.ArgoCD]:
    """Argo CD's controllers running against the management cluster, for the tests of one
    module: they stop after it, so the memory they hold is free for the other tests."""
    module = argocdproc.module_dir(build.default_source_dir() / "argocd")
    # Our kinds' health checks in argocd-cm as the chart renders them (argocd.healthChecks).
    helm = helmtool.Helm(binary=binaries["helm"], home=tmp_path_factory.mktemp("argocd-helm"))
    (health,) = helm.template(
        "--set", "argocd.healthChecks=true", "--show-only", "templates/argocd-health.yaml"
    )  # fmt: skip
    argocdproc.install_argocd(
        client=kube, target=local_stack.management, module=module, health=health["data"]
    )
    running = argocdproc.start(
        binary=binaries["argocd"],
        module=module,
        target=local_stack.management,
        workdir=tmp_path_factory.mktemp("argocd"),
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def argocd(
    argocd_controllers: argocdproc.ArgoCD, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[argocdproc.GitRepo]:
    """A git repository, served by git daemon, for the module's Argo CD to sync."""
    repo = argocdproc.serve_repo(tmp_path_factory.mktemp("gitops"))
    yield repo
    repo.daemon.stop()
