"""Regional clusters run pods on simulated (kwok) nodes and serve the real metrics API, so
the real HPA controller scales a real Deployment on simulated CPU use."""

from __future__ import annotations

import decimal
import json
import pathlib
import sys
import uuid
from collections.abc import Iterator

import lightkube
import pytest
import redis.asyncio as aioredis
from lightkube.models import apps_v1, autoscaling_v2, core_v1, meta_v1
from lightkube.resources import apps_v1 as apps
from lightkube.resources import core_v1 as core
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler as Hpa

from imagegen.kube import clients
from imagegen.localcluster import addons, cluster, process, redis
from imagegen.queue import core as queue_core
from imagegen.queue import model
from imagegen.sim import load
from tests.integration import waiting
from tests.integration.conftest import SCRATCH_DB

pytestmark = pytest.mark.autoscale

REGION = "us-east"
APP = "probe"
REPLICAS = 3
CPU_REQUEST = "500m"
# 90 % of the request, against the HPA's 70 % target: the HPA must scale up.
BUSY_CPU = "450m"
# metrics-server writes CPU in nanocores ("449876543n"), which lightkube's parser refuses.
_CPU_UNITS = {
    "n": decimal.Decimal("1e-9"),
    "u": decimal.Decimal("1e-6"),
    "m": decimal.Decimal("1e-3"),
}


@pytest.fixture(scope="module")
def region(regions: dict[str, cluster.LocalCluster]) -> cluster.LocalCluster:
    """The regional cluster these tests run pods in."""
    return regions[REGION]


@pytest.fixture
def client(region: cluster.LocalCluster) -> Iterator[lightkube.Client]:
    """An admin client of the region."""
    with clients.sync_client(kubeconfig=region.kubeconfig) as admin:
        yield admin


@pytest.fixture
def namespace(client: lightkube.Client) -> Iterator[str]:
    """A fresh namespace that enforces the restricted Pod Security Standard, as worker
    namespaces do, so a pod spec that breaks it fails here too."""
    name = f"nodes-{uuid.uuid4().hex[:8]}"
    client.create(
        core.Namespace(
            metadata=meta_v1.ObjectMeta(
                name=name, labels={"pod-security.kubernetes.io/enforce": "restricted"}
            )
        )
    )
    yield name
    client.delete(core.Namespace, name)


def deployment(*, namespace: str) -> apps.Deployment:
    """A Deployment of REPLICAS pods, each requesting CPU_REQUEST, restricted-PSS compliant."""
    labels = {"app": APP}
    return apps.Deployment(
        metadata=meta_v1.ObjectMeta(name=APP, namespace=namespace),
        spec=apps_v1.DeploymentSpec(
            replicas=REPLICAS,
            selector=meta_v1.LabelSelector(matchLabels=labels),
            template=core_v1.PodTemplateSpec(
                metadata=meta_v1.ObjectMeta(labels=labels),
                spec=core_v1.PodSpec(
                    automountServiceAccountToken=False,
                    securityContext=core_v1.PodSecurityContext(
                        runAsNonRoot=True,
                        runAsUser=65532,
                        seccompProfile=core_v1.SeccompProfile(type="RuntimeDefault"),
                    ),
                    containers=[
                        core_v1.Container(
                            name="main",
                            # kwok never pulls or runs it: the pod is simulated.
                            image="registry.k8s.io/pause:3.10",
                            resources=core_v1.ResourceRequirements(
                                requests={"cpu": CPU_REQUEST, "memory": "64Mi"}
                            ),
                            securityContext=core_v1.SecurityContext(
                                allowPrivilegeEscalation=False,
                                capabilities=core_v1.Capabilities(drop=["ALL"]),
                            ),
                        )
                    ],
                ),
            ),
        ),
    )


def running_pods(client: lightkube.Client, *, namespace: str, count: int) -> list[core.Pod]:
    """Wait until `count` pods of APP run on kwok nodes; return them."""

    def probe() -> list[core.Pod] | None:
        pods = list(client.list(core.Pod, namespace=namespace, labels={"app": APP}))
        running = [
            pod
            for pod in pods
            if pod.status is not None
            and pod.status.phase == "Running"
            and pod.spec is not None
            and (pod.spec.nodeName or "").startswith(addons.NODE_PREFIX)
        ]
        return running if len(running) >= count else None

    return waiting.until(probe, timeout=60, interval=0.5, what=f"{count} pods Running")


def set_cpu_usage(client: lightkube.Client, pods: list[core.Pod], *, cpu: str) -> None:
    """Set each pod's simulated CPU use, as the load model does."""
    for pod in pods:
        assert pod.metadata is not None
        assert pod.metadata.name is not None
        client.patch(
            core.Pod,
            pod.metadata.name,
            {"metadata": {"annotations": {addons.USAGE_CPU_ANNOTATION: cpu}}},
            namespace=pod.metadata.namespace,
        )


def pod_cpu(region: cluster.LocalCluster, *, namespace: str) -> dict[str, decimal.Decimal]:
    """Each pod's CPU in cores, as the metrics API (metrics-server) reports it."""
    try:
        body = region.get(f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods")
    except OSError:
        # 503 until metrics-server has scraped once: the API is there, the data is not.
        return {}
    usage: dict[str, decimal.Decimal] = {}
    for item in json.loads(body)["items"]:
        total = sum(cores(c["usage"]["cpu"]) for c in item["containers"])
        usage[item["metadata"]["name"]] = decimal.Decimal(total)
    return usage


def cores(cpu: str) -> decimal.Decimal:
    """A CPU quantity in cores: "450m" -> 0.45."""
    if cpu[-1:] in _CPU_UNITS:
        return decimal.Decimal(cpu[:-1]) * _CPU_UNITS[cpu[-1]]
    return decimal.Decimal(cpu)


def test_a_deployment_runs_on_the_simulated_nodes(client: lightkube.Client, namespace: str) -> None:
    client.create(deployment(namespace=namespace))
    pods = running_pods(client, namespace=namespace, count=REPLICAS)
    assert len(pods) == REPLICAS


def test_the_metrics_api_reports_the_cpu_a_pod_annotation_says(
    client: lightkube.Client, region: cluster.LocalCluster, namespace: str
) -> None:
    client.create(deployment(namespace=namespace))
    pods = running_pods(client, namespace=namespace, count=REPLICAS)
    set_cpu_usage(client, pods, cpu=BUSY_CPU)
    names = {pod.metadata.name for pod in pods if pod.metadata is not None}
    busy = cores(BUSY_CPU)

    def near_busy() -> dict[str, decimal.Decimal] | None:
        usage = pod_cpu(region, namespace=namespace)
        # A rate over two scrapes: close to the annotation, not equal to it.
        settled = all(abs(usage.get(name, 0) - busy) <= busy / 20 for name in names)
        return usage if settled else None

    # Two scrapes at the 10 s metric resolution, and a margin for a loaded machine.
    waiting.until(near_busy, timeout=60, interval=1, what=f"{BUSY_CPU} per pod in metrics")


def test_the_real_hpa_scales_up_on_simulated_cpu(client: lightkube.Client, namespace: str) -> None:
    client.create(deployment(namespace=namespace))
    set_cpu_usage(client, running_pods(client, namespace=namespace, count=REPLICAS), cpu=BUSY_CPU)
    client.create(
        Hpa(
            metadata=meta_v1.ObjectMeta(name=APP, namespace=namespace),
            spec=autoscaling_v2.HorizontalPodAutoscalerSpec(
                scaleTargetRef=autoscaling_v2.CrossVersionObjectReference(
                    apiVersion="apps/v1", kind="Deployment", name=APP
                ),
                minReplicas=REPLICAS,
                maxReplicas=10,
                metrics=[
                    autoscaling_v2.MetricSpec(
                        type="Resource",
                        resource=autoscaling_v2.ResourceMetricSource(
                            name="cpu",
                            target=autoscaling_v2.MetricTarget(
                                type="Utilization", averageUtilization=70
                            ),
                        ),
                    )
                ],
            ),
        )
    )

    def scaled_up() -> int | None:
        spec = client.get(apps.Deployment, APP, namespace=namespace).spec
        replicas = spec.replicas if spec is not None else None
        return replicas if replicas is not None and replicas > REPLICAS else None

    # Metrics need two scrapes (10 s resolution), then one HPA sync (5 s in these clusters).
    try:
        waiting.until(scaled_up, timeout=120, interval=1, what="scale-up past 3 replicas")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{hpa_story(client, namespace=namespace)}") from None


def hpa_story(client: lightkube.Client, *, namespace: str) -> str:
    """The HPA's status, conditions and events: what it saw and why it did not act."""
    hpa = client.get(Hpa, APP, namespace=namespace)
    lines = [f"HPA status: {hpa.status.to_dict() if hpa.status else None}"]
    for event in client.list(core.Event, namespace=namespace, fields={"involvedObject.name": APP}):
        lines.append(f"event {event.type} {event.reason}: {event.message}")
    return "\n".join(lines)


async def test_the_load_model_process_sets_each_pods_cpu_from_its_pools_queue(
    client: lightkube.Client,
    region: cluster.LocalCluster,
    namespace: str,
    scratch_redis: aioredis.Redis,
    redis_server: redis.LocalRedis,
    tmp_path: pathlib.Path,
) -> None:
    client.create(deployment(namespace=namespace))
    running_pods(client, namespace=namespace, count=REPLICAS)
    queue = queue_core.Queue(redis=scratch_redis, pool="dedicated-probe")
    batch = model.BatchRef(uid="batch-1", tenant="probe", tier="priority", priority="normal")
    work = [model.ItemSpec(id=f"img-{n}", payload={"prompt": "a kiln"}) for n in range(6)]
    await queue.enqueue_batch(batch=batch, items=work)
    argv = [sys.executable, "-m", "imagegen.sim", "--kubeconfig", str(region.kubeconfig)]
    argv += ["--redis-url", f"redis://127.0.0.1:{redis_server.port}/{SCRATCH_DB}"]
    argv += ["--namespace", namespace, "--target", f"dedicated-probe={APP}", "--interval", "0.5"]
    model_process = process.spawn(name="load-model", argv=argv, log_path=tmp_path / "sim.log")
    try:
        # 6 queued items on 3 pods of 4 slots: half the pool's capacity, so each pod reports
        # its idle 10m plus half its 500m request.
        cpu_of_three = load.pod_cpu_millicores(
            queued=6, in_flight=0, replicas=3, shape=load.PodShape()
        )
        assert cpu_of_three == 260
        annotated(client, namespace=namespace, count=3, value="260m")

        client.patch(apps.Deployment, APP, {"spec": {"replicas": 6}}, namespace=namespace)
        # The new pods are found and every pod's share halves: 10m + 125m.
        annotated(client, namespace=namespace, count=6, value="135m")
    finally:
        model_process.stop()
    assert "Traceback" not in model_process.log_tail(lines=200)


def annotated(client: lightkube.Client, *, namespace: str, count: int, value: str) -> None:
    """Wait until `count` pods carry usage-cpu `value`."""

    def probe() -> bool:
        pods = running_pods(client, namespace=namespace, count=count)
        values = {(p.metadata.annotations or {}).get(addons.USAGE_CPU_ANNOTATION) for p in pods}  # type: ignore[union-attr]
        return len(pods) == count and values == {value}

    waiting.until(probe, timeout=60, interval=0.5, what=f"{count} pods at {value}")


def test_nodes_without_the_scheduler_are_refused() -> None:
    with pytest.raises(ValueError, match="scheduler"):
        cluster.ClusterOptions(nodes=2)


def test_stopping_a_cluster_with_nodes_and_metrics_leaves_nothing(
    binaries: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    running = cluster.start(
        name="short-lived-nodes",
        workdir=tmp_path / "short-lived-nodes",
        binaries=binaries,
        options=cluster.ClusterOptions(scheduler=True, nodes=1, metrics=True),
    )
    try:
        # The metrics API answering means kwok and metrics-server are up and listening.
        waiting.until(lambda: _metrics_api_answers(running), timeout=60, what="the metrics API")
        pids = running.running_pids()
        names = sorted(child.name for child in running.processes)
    finally:
        running.stop()
    assert names == sorted(
        [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            "metrics-server",
        ]
    )
    assert len(pids) == len(names)
    assert running.running_pids() == []
    assert [port for port in running.ports if process.port_open(port)] == []
    for pid in pids:
        assert not pathlib.Path(f"/proc/{pid}").exists(), f"process {pid} was not reaped"


def test_simulated_nodes_offer_the_allocatable_the_options_give(
    binaries: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    # Room for two workers of 500m: what a benchmark gives to fill a region.
    small = {"cpu": "1", "memory": "4Gi", "pods": "20"}
    running = cluster.start(
        name="small-nodes",
        workdir=tmp_path / "small-nodes",
        binaries=binaries,
        options=cluster.ClusterOptions(scheduler=True, nodes=2, node_allocatable=small),
    )
    try:
        with clients.sync_client(kubeconfig=running.kubeconfig) as admin:
            nodes = waiting.until(
                lambda: (found := list(admin.list(core.Node))) and len(found) == 2 and found,
                timeout=60,
                what="two nodes",
            )
            offered = [
                dict((node.status.allocatable or {}) if node.status else {}) for node in nodes
            ]
    finally:
        running.stop()
    assert offered == [small, small]


def _metrics_api_answers(running: cluster.LocalCluster) -> bool:
    try:
        running.get("/apis/metrics.k8s.io/v1beta1/nodes")
    except OSError:
        return False
    return True
