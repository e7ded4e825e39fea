"""What the chart exposes, as the real helm renders it: the gateway through an Ingress
(class, host, TLS Secret) or a LoadBalancer limited to source ranges, and the regions'
worker pods to Prometheus (PodMonitor)."""

from __future__ import annotations

import pathlib

import pytest

from imagegen.render import labels
from tests.integration import helmtool
from tests.integration.helmtool import find


@pytest.fixture(scope="module")
def helm(
    binaries: dict[str, pathlib.Path], tmp_path_factory: pytest.TempPathFactory
) -> helmtool.Helm:
    return helmtool.Helm(binary=binaries["helm"], home=tmp_path_factory.mktemp("helm-home"))


def test_no_ingress_unless_asked(helm: helmtool.Helm) -> None:
    assert not [o for o in helm.template() if o["kind"] == "Ingress"]


def test_an_ingress_routes_the_host_to_the_gateway_with_tls(helm: helmtool.Helm) -> None:
    objects = helm.template(
        "--set", "gateway.ingress.enabled=true",
        "--set", "gateway.ingress.className=nginx",
        "--set", "gateway.ingress.host=imagegen.example.com",
        "--set", "gateway.ingress.tls.secretName=imagegen-tls",
        "--set-string",
        "gateway.ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/proxy-buffering=off",
    )  # fmt: skip
    ingress = find(objects, "Ingress", "imagegen-gateway")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"hosts": ["imagegen.example.com"], "secretName": "imagegen-tls"}]
    rule = spec["rules"][0]
    assert rule["host"] == "imagegen.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = find(objects, "Service", "imagegen-gateway")
    assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert service["spec"]["ports"][0]["name"] == "http"
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/proxy-buffering": "off"
    }


def test_an_ingress_without_a_host_is_refused_naming_the_field(helm: helmtool.Helm) -> None:
    refused = helm.refused(
        "template", helmtool.RELEASE, str(helmtool.CHART), "--set", "gateway.ingress.enabled=true"
    )
    assert "gateway.ingress.host" in refused


def test_a_load_balancer_can_be_limited_to_the_partners_addresses(helm: helmtool.Helm) -> None:
    objects = helm.template(
        "--set", "gateway.service.type=LoadBalancer",
        "--set", "gateway.service.loadBalancerSourceRanges={203.0.113.0/24}",
    )  # fmt: skip
    service = find(objects, "Service", "imagegen-gateway")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]


def test_a_region_with_monitoring_scrapes_every_worker_pool(helm: helmtool.Helm) -> None:
    objects = helm.template(
        "--set", "mode=region", "--set", "monitoring.serviceMonitor.enabled=true"
    )  # fmt: skip
    monitor = find(objects, "PodMonitor", "imagegen-workers")
    assert monitor["metadata"]["namespace"] == "imagegen-workers"
    # The labels the operator puts on every worker pod (render/labels.py).
    assert monitor["spec"]["selector"]["matchLabels"] == {
        labels.NAME: labels.WORKER,
        labels.COMPONENT: labels.WORKER_COMPONENT,
    }
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "http"


def test_log_format_is_set_as_the_global_flag_it_is(helm: helmtool.Helm) -> None:
    objects = helm.template("--set", "logFormat=json")
    for name in ("imagegen-operator", "imagegen-gateway"):
        args = find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0][
            "args"
        ]
        assert args[0] == "--log-format=json", name
        assert args[1] in ("operator", "gateway")
    refused = helm.refused(
        "template", helmtool.RELEASE, str(helmtool.CHART), "--set", "logFormat=yaml"
    )
    assert "logFormat" in refused
