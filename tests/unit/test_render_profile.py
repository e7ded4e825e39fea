"""Worker pod profiles: validation with field-named errors, layers merged in order, and
the pod spec they render to."""

from typing import Any

import pydantic
import pytest

from imagegen.api import operatorconfig, podprofile, tenant
from imagegen.render import pool, profile
from tests import builders

UID = "5f0c6d8e-2b1a-4c3d-9e8f-0a1b2c3d4e5f"
DEDICATED_TAINT = {
    "key": "imagegen.semantest.io/dedicated",
    "operator": "Equal",
    "value": "premium",
    "effect": "NoSchedule",
}
GPU_A100: dict[str, Any] = {
    "resources": {"requests": {"nvidia.com/gpu": "1", "cpu": "2"}, "limits": {"cpu": "4"}},
    "nodeSelector": {"imagegen.semantest.io/node-pool": "gpu-a100"},
    "tolerations": [DEDICATED_TAINT],
    "priorityClassName": "imagegen-premium",
    "runtimeClassName": "nvidia",
}


def config_with(**fields: Any) -> operatorconfig.OperatorConfig:
    document = operatorconfig.local_default().model_dump(mode="json", exclude_none=True)
    document.update(fields)
    return operatorconfig.OperatorConfig.model_validate(document)


def premium(**workers: Any) -> builders.TenantBuilder:
    return (
        builders.make_tenant("premium")
        .uid(UID)
        .tier("priority")
        .regions("us-east")
        .workers(pool="dedicated", **workers)
    )


def pod_spec(builder: builders.TenantBuilder, config: operatorconfig.OperatorConfig) -> Any:
    manifests = pool.tenant_pool(tenant=builder.model(), region="us-east", config=config)
    (deployment,) = [m for m in manifests if m["kind"] == "Deployment"]
    return deployment["spec"]["template"]


def error_of(build: Any) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        build()
    return str(caught.value)


# Validation, with the field named


def test_negative_gpu_count_is_refused_naming_the_field() -> None:
    message = error_of(
        lambda: premium(pod={"resources": {"requests": {"nvidia.com/gpu": "-1"}}}).model()
    )
    assert "spec.workers.pod.resources.requests.`nvidia.com/gpu`" in message


def test_toleration_with_an_unknown_operator_is_refused_naming_the_field() -> None:
    message = error_of(
        lambda: premium(pod={"tolerations": [{"key": "gpu", "operator": "Within"}]}).model()
    )
    assert "tolerations.0.operator" in message
    assert "'Exists' or 'Equal'" in message


def test_toleration_exists_with_a_value_is_refused() -> None:
    message = error_of(
        lambda: podprofile.Toleration.model_validate(
            {"key": "gpu", "operator": "Exists", "value": "yes"}
        )
    )
    assert podprofile.EXISTS_HAS_NO_VALUE.message in message


def test_extended_resource_takes_whole_units() -> None:
    message = error_of(
        lambda: podprofile.Resources.model_validate({"requests": {"nvidia.com/gpu": "500m"}})
    )
    assert "requests[nvidia.com/gpu]: an extended resource takes a whole number" in message


def test_extended_resource_request_and_limit_must_match() -> None:
    message = error_of(
        lambda: podprofile.Resources.model_validate(
            {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}
        )
    )
    assert "limits[nvidia.com/gpu]: must equal requests[nvidia.com/gpu]" in message


def test_resource_name_must_be_a_qualified_name() -> None:
    message = error_of(
        lambda: podprofile.Resources.model_validate({"requests": {"nvidia gpu!": "1"}})
    )
    assert "resource names: 'nvidia gpu!' is not a qualified name" in message


def test_a_shared_pool_tenant_takes_no_profile() -> None:
    message = error_of(
        lambda: (
            builders.make_tenant("acme")
            .regions("us-east")
            .workers(pool="shared", profile="gpu-a100")
            .model()
        )
    )
    assert tenant.PROFILE_NEEDS_DEDICATED.message in message


def test_unknown_profile_name_is_refused_naming_the_field() -> None:
    with pytest.raises(profile.UnknownProfileError, match=r"spec.workers.profile: unknown"):
        pod_spec(premium(profile="gpu-h100"), config_with(profiles={"gpu-a100": GPU_A100}))


def test_shared_pool_profile_must_be_known_to_the_config() -> None:
    message = error_of(lambda: config_with(sharedPool={"pool": "shared", "profile": "nope"}))
    assert "sharedPool.profile: unknown profile 'nope'" in message


# Layers and rendering


def test_named_profile_places_pods_on_the_gpu_pool_with_its_priority() -> None:
    template = pod_spec(premium(profile="gpu-a100"), config_with(profiles={"gpu-a100": GPU_A100}))
    spec = template["spec"]

    assert spec["nodeSelector"] == {"imagegen.semantest.io/node-pool": "gpu-a100"}
    assert spec["tolerations"] == [DEDICATED_TAINT]
    assert spec["priorityClassName"] == "imagegen-premium"
    assert spec["runtimeClassName"] == "nvidia"
    # The GPU goes to both requests and limits; cpu from the profile, memory from the config.
    assert spec["containers"][0]["resources"] == {
        "requests": {"cpu": "2", "memory": "256Mi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "4", "memory": "512Mi", "nvidia.com/gpu": "1"},
    }


def test_tenant_pod_profile_goes_over_the_named_one_maps_by_key_lists_whole() -> None:
    builder = premium(
        profile="gpu-a100",
        pod={
            "nodeSelector": {"topology.kubernetes.io/zone": "us-east-1a"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "resources": {"requests": {"nvidia.com/gpu": "2"}},
        },
    )
    spec = pod_spec(builder, config_with(profiles={"gpu-a100": GPU_A100}))["spec"]

    assert spec["nodeSelector"] == {
        "imagegen.semantest.io/node-pool": "gpu-a100",
        "topology.kubernetes.io/zone": "us-east-1a",
    }
    assert spec["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_config_default_profile_applies_to_every_pool_below_the_tenants() -> None:
    config = config_with(
        workers={"profile": {"priorityClassName": "imagegen-standard"}},
        profiles={"gpu-a100": GPU_A100},
    )
    standard = pod_spec(premium(), config)["spec"]
    gpu = pod_spec(premium(profile="gpu-a100"), config)["spec"]
    shared = pool.shared_pool(region="us-east", config=config)

    assert standard["priorityClassName"] == "imagegen-standard"
    assert "tolerations" not in standard
    assert gpu["priorityClassName"] == "imagegen-premium"
    (deployment,) = [m for m in shared if m["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["priorityClassName"] == "imagegen-standard"


def test_topology_spread_selects_the_pools_own_pods() -> None:
    builder = premium(pod={"topologySpread": [{"topologyKey": "topology.kubernetes.io/zone"}]})
    spec = pod_spec(builder, operatorconfig.local_default())["spec"]

    assert spec["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {
                "matchLabels": {
                    "imagegen.semantest.io/tenant": "premium",
                    "imagegen.semantest.io/pool": "dedicated",
                    "imagegen.semantest.io/region": "us-east",
                }
            },
        }
    ]


def test_node_affinity_renders_as_kubernetes_spells_it() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["a100"]}]}
                ]
            }
        }
    }
    spec = pod_spec(premium(pod={"affinity": affinity}), operatorconfig.local_default())["spec"]
    assert spec["affinity"] == affinity


def test_dropping_a_profile_field_changes_the_template_digest() -> None:
    config = config_with(profiles={"gpu-a100": GPU_A100})
    with_profile = pod_spec(premium(profile="gpu-a100"), config)["metadata"]["annotations"]
    without = pod_spec(premium(), config)["metadata"]["annotations"]

    assert with_profile[podprofile.PROFILE_ANNOTATION] != without[podprofile.PROFILE_ANNOTATION]
