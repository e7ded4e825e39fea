"""What lets pods run and be measured in a local cluster without machines: kwok (simulated
nodes whose pods turn Running and use the CPU their annotation says) and metrics-server
(the metrics.k8s.io API the HPA controller reads, scraped from kwok), each a process on a
loopback port, with the API objects that tie them in.

The simulation ends at the CPU figure: scheduling, the metrics pipeline and the HPA
controller that acts on it are the real Kubernetes parts.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from imagegen.localcluster import kwokfiles, pki, process

USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
"""A pod's simulated CPU use, a quantity such as 450m (kwok's metrics/usage config)."""

NODE_PREFIX = "kwok-node-"

# Room on each node for what the regional clusters run: 50 worker pods of 500m per tenant
# fit on two nodes, with pods and memory to spare.
NODE_ALLOCATABLE = {"cpu": "32", "memory": "128Gi", "pods": "110"}

METRICS_API = "v1beta1.metrics.k8s.io"

# metrics-server refuses a resolution below 10 s (the production default is 60 s), and a
# kubelet timeout above 90 % of it; a short one is for tests, so the HPA sees a changed
# annotation within about two scrapes.
_METRIC_RESOLUTION = "10s"
_KUBELET_REQUEST_TIMEOUT = "5s"

# kwok renews each node's Lease at this duration, as a kubelet would; the node lifecycle
# controller would otherwise mark the nodes NotReady and evict their pods.
_NODE_LEASE_SECONDS = 40

# kwok hands out pod IPs from this range; its default /24 runs out at 254 pods.
_POD_CIDR = "10.244.0.0/16"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ApiObject:
    """An object to create through the apiserver: its collection's path and its manifest."""

    collection: str
    manifest: dict[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Addon:
    """A process to start once the apiserver is ready, and the objects it needs first."""

    name: str
    argv: list[str]
    port: int
    objects: list[ApiObject]


def wanted(
    *,
    nodes: int,
    metrics: bool,
    binaries: Mapping[str, pathlib.Path],
    certs: pki.ClusterPKI,
    kubeconfig: pathlib.Path,
    node_allocatable: Mapping[str, str] = NODE_ALLOCATABLE,
) -> list[Addon]:
    """The addons a cluster with `nodes` simulated nodes (each offering
    `node_allocatable`), and metrics or not, runs."""
    chosen = []
    if nodes:
        chosen.append(
            kwok(
                binary=binaries["kwok"],
                kubeconfig=kubeconfig,
                certs=certs,
                config_files=kwokfiles.config_files(),
                nodes=nodes,
                allocatable=node_allocatable,
            )
        )
    if metrics:
        chosen.append(
            metrics_server(binary=binaries["metrics-server"], kubeconfig=kubeconfig, certs=certs)
        )
    return chosen


def kwok(
    *,
    binary: pathlib.Path,
    kubeconfig: pathlib.Path,
    certs: pki.ClusterPKI,
    config_files: Sequence[pathlib.Path],
    nodes: int,
    allocatable: Mapping[str, str] = NODE_ALLOCATABLE,
) -> Addon:
    """kwok managing `nodes` simulated Nodes of `allocatable` each (and any Node created
    later), serving their kubelet endpoint on one port."""
    port = process.free_port()
    argv = [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--manage-all-nodes",
        # Every node's InternalIP and kubelet port are kwok's own server, which serves each
        # node's metrics under its name (the resource-metrics-path annotation).
        "--node-ip=127.0.0.1",
        f"--node-port={port}",
        f"--server-address=127.0.0.1:{port}",
        f"--tls-cert-file={certs.kwok_serving_cert}",
        f"--tls-private-key-file={certs.kwok_serving_key}",
        f"--node-lease-duration-seconds={_NODE_LEASE_SECONDS}",
        f"--cidr={_POD_CIDR}",
        *(f"--config={path}" for path in config_files),
    ]
    return Addon(
        name="kwok",
        argv=argv,
        port=port,
        objects=[
            ApiObject(
                collection="/api/v1/nodes",
                manifest=node_manifest(f"{NODE_PREFIX}{index}", allocatable=allocatable),
            )
            for index in range(nodes)
        ],
    )


def metrics_server(
    *, binary: pathlib.Path, kubeconfig: pathlib.Path, certs: pki.ClusterPKI
) -> Addon:
    """metrics-server on a loopback port, registered as the metrics.k8s.io API."""
    port = process.free_port()
    argv = [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={certs.metrics_server_serving_cert}",
        f"--tls-private-key-file={certs.metrics_server_serving_key}",
        # kwok's serving certificate comes from the cluster CA, so it can be verified.
        f"--kubelet-certificate-authority={certs.ca_cert}",
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        f"--metric-resolution={_METRIC_RESOLUTION}",
        f"--kubelet-request-timeout={_KUBELET_REQUEST_TIMEOUT}",
    ]
    return Addon(
        name="metrics-server", argv=argv, port=port, objects=_metrics_api_objects(port=port)
    )


def node_manifest(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] = (),
    allocatable: Mapping[str, str] = NODE_ALLOCATABLE,
) -> dict[str, Any]:
    """A Node for kwok to manage: labelled as kwok's docs do, without kwok's usual taint,
    so that ordinary pods (the worker Deployments) schedule onto it. Extra labels, taints
    and allocatable (such as nvidia.com/gpu) make a node pool; kwok reports what it says."""
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
                **(labels or {}),
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "kwok.x-k8s.io/node": "fake",
                # Where metrics-server finds this node's kubelet metrics on kwok's server.
                "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource",
            },
        },
        # kwok's node stage keeps the allocatable and capacity a Node is created with.
        "status": {"allocatable": dict(allocatable), "capacity": dict(allocatable)},
    }
    if taints:
        manifest["spec"] = {"taints": [dict(taint) for taint in taints]}
    return manifest


def _metrics_api_objects(*, port: int) -> list[ApiObject]:
    """The APIService routing metrics.k8s.io to metrics-server on localhost:port.

    The apiserver resolves an ExternalName Service to its name and the APIService's port,
    which reaches a process outside any pod network. It skips TLS verification because the
    name it would verify (metrics-server.kube-system.svc) is not the loopback server's.
    """
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "metrics-server", "namespace": "kube-system"},
        "spec": {"type": "ExternalName", "externalName": "localhost"},
    }
    api_service = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": METRICS_API},
        "spec": {
            "group": "metrics.k8s.io",
            "version": "v1beta1",
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
            "insecureSkipTLSVerify": True,
            "service": {"name": "metrics-server", "namespace": "kube-system", "port": port},
        },
    }
    return [
        ApiObject(collection="/api/v1/namespaces/kube-system/services", manifest=service),
        ApiObject(collection="/apis/apiregistration.k8s.io/v1/apiservices", manifest=api_service),
    ]
