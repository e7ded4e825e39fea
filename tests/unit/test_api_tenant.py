"""The Tenant model: defaults, the round trip with the apiserver, and validation."""

import datetime
import pathlib
from typing import Any

import pydantic
import pytest
import yaml

from imagegen.api import meta, tenant
from tests import builders

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

# A Tenant as `kubectl get tenant acme -o yaml` shows it: defaults filled in, server
# fields in metadata, status written by the operator.
FROM_APISERVER: dict[str, Any] = {
    "apiVersion": "imagegen.semantest.io/v1alpha1",
    "kind": "Tenant",
    "metadata": {
        "name": "acme",
        "uid": "0b6c4c2e-8f7a-4d43-9d0e-4b8f7f0c1a11",
        "resourceVersion": "4711",
        "generation": 2,
        "creationTimestamp": "2025-01-02T03:04:05Z",
        "labels": {"team": "platform"},
        "annotations": {"imagegen.semantest.io/last-handled-configuration": "{}"},
        "finalizers": ["imagegen.semantest.io/finalizer"],
        "managedFields": [
            {"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "fieldsV1": {}}
        ],
    },
    "spec": {
        "tier": "standard",
        "namespace": "tenant-acme",
        "rateLimit": {"requestsPerMinute": 60, "burst": 120},
        "quota": {"maxBatchSize": 100, "maxActiveBatches": 10, "maxImagesPerMinute": 600},
        "sla": {"batchDeadlineSeconds": 300},
        "regions": ["us-east", "eu-west"],
        "workers": {
            "pool": "dedicated",
            "minReplicas": 3,
            "maxReplicas": 50,
            "targetCPUUtilizationPercentage": 70,
            "scaleUpThresholdPercent": 80,
            "scaleDownThresholdPercent": 30,
            "providers": [{"name": "local"}],
        },
        "retention": {"batchTTLSeconds": 604800},
    },
    "status": {
        "observedGeneration": 2,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "PoolsReady",
                "message": "2 of 2 regions ready",
                "lastTransitionTime": "2025-01-02T03:05:00Z",
                "observedGeneration": 2,
            }
        ],
        "regions": [
            {
                "name": "us-east",
                "readyReplicas": 3,
                "desiredReplicas": 3,
                "hpaCurrentReplicas": 3,
                "hpaDesiredReplicas": 4,
                "conditions": [
                    {
                        "type": "AbleToScale",
                        "status": "True",
                        "reason": "SucceededRescale",
                        "lastTransitionTime": "2025-01-02T03:06:00Z",
                    }
                ],
            },
            {"name": "eu-west", "lastError": "connection refused"},
        ],
    },
}


def dump(
    obj: pydantic.BaseModel, *, exclude_none: bool = False, exclude_unset: bool = False
) -> dict[str, Any]:
    """The wire form of a model, as a dict."""
    return obj.model_dump(mode="json", exclude_none=exclude_none, exclude_unset=exclude_unset)


# Defaults


def test_minimal_tenant_gets_a_complete_spec() -> None:
    spec = builders.make_tenant("acme").model().spec
    assert spec.tier == "standard"
    assert spec.namespace == "tenant-acme"
    assert (spec.rate_limit.requests_per_minute, spec.rate_limit.burst) == (60, 120)
    assert spec.quota.max_batch_size == 100
    assert spec.sla.batch_deadline_seconds == 300


def test_minimal_tenant_scales_3_to_50_at_70_percent_within_30_to_80() -> None:
    workers = builders.make_tenant().model().spec.workers
    assert workers.pool == "dedicated"
    assert (workers.min_replicas, workers.max_replicas) == (3, 50)
    assert workers.target_cpu_utilization_percentage == 70
    assert (workers.scale_down_threshold_percent, workers.scale_up_threshold_percent) == (30, 80)
    assert [provider.name for provider in workers.providers] == ["local"]


def test_defaults_are_not_shared_between_tenants() -> None:
    first = builders.make_tenant("a").model()
    second = builders.make_tenant("b").model()
    first.spec.workers.providers.append(tenant.Provider(name="other"))
    assert [provider.name for provider in second.spec.workers.providers] == ["local"]


def test_status_is_absent_until_the_operator_writes_it() -> None:
    assert builders.make_tenant().model().status is None


# Round trip


def test_object_from_the_apiserver_round_trips_unchanged() -> None:
    obj = tenant.Tenant.model_validate(FROM_APISERVER)
    assert dump(obj, exclude_none=True) == FROM_APISERVER


def test_server_metadata_fields_pass_through() -> None:
    metadata = tenant.Tenant.model_validate(FROM_APISERVER).metadata
    assert metadata.generation == 2
    assert metadata.creation_timestamp == datetime.datetime(
        2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC
    )
    assert dump(metadata)["managedFields"] == FROM_APISERVER["metadata"]["managedFields"]


@pytest.mark.parametrize("name", ["tenant-metaphysical.yaml", "tenant-acme.yaml"])
def test_example_tenant_round_trips(name: str) -> None:
    document = yaml.safe_load((EXAMPLES / name).read_text())
    obj = tenant.Tenant.model_validate(document)
    assert dump(obj, exclude_unset=True) == document


def test_premium_example_is_the_priority_tenant_of_the_design() -> None:
    document = yaml.safe_load((EXAMPLES / "tenant-metaphysical.yaml").read_text())
    spec = tenant.Tenant.model_validate(document).spec
    assert spec.tier == "priority"
    assert spec.regions == ["us-east", "eu-west", "asia-pacific"]
    assert spec.quota.max_batch_size == 100
    assert spec.sla.batch_deadline_seconds == 300


def test_python_names_build_the_camel_case_wire_format() -> None:
    workers = tenant.Workers(target_cpu_utilization_percentage=60, scale_down_threshold_percent=20)
    wire = dump(workers)
    assert wire["targetCPUUtilizationPercentage"] == 60
    assert wire["scaleDownThresholdPercent"] == 20


def test_timestamps_are_written_in_whole_seconds_utc() -> None:
    condition = meta.Condition(
        type="Ready",
        status="True",
        reason="PoolsReady",
        last_transition_time=datetime.datetime(
            2025, 1, 2, 4, 4, 5, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
        ),
    )
    assert dump(condition)["lastTransitionTime"] == "2025-01-02T03:04:05Z"


def test_unknown_status_fields_are_ignored() -> None:
    obj = builders.make_tenant().status(observed_generation=1).set("status.future", "x").model()
    assert obj.status is not None
    assert dump(obj.status, exclude_none=True) == {"observedGeneration": 1}


# Cross-field rules, the same as the CEL rules of the CRD


@pytest.mark.parametrize(
    ("workers", "rule"),
    [
        ({"min_replicas": 10, "max_replicas": 5}, tenant.REPLICAS_ORDERED),
        ({"min_replicas": 50, "max_replicas": 49}, tenant.REPLICAS_ORDERED),
        ({"scale_up_threshold_percent": 60}, tenant.THRESHOLDS_ORDERED),
        ({"scale_up_threshold_percent": 70}, tenant.THRESHOLDS_ORDERED),
        ({"scale_down_threshold_percent": 75}, tenant.THRESHOLDS_ORDERED),
        ({"scale_down_threshold_percent": 70}, tenant.THRESHOLDS_ORDERED),
        ({"target_cpu_utilization_percentage": 90}, tenant.THRESHOLDS_ORDERED),
    ],
)
def test_workers_breaking_a_cel_rule_are_rejected_with_its_message(
    workers: dict[str, int], rule: meta.Rule
) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        builders.make_tenant().workers(**workers).model()
    assert builders.field_errors(caught.value) == {"spec.workers": f"Value error, {rule.message}"}


@pytest.mark.parametrize(
    "workers",
    [
        {"min_replicas": 5, "max_replicas": 5},
        {"min_replicas": 1, "max_replicas": 1},
        {
            "target_cpu_utilization_percentage": 50,
            "scale_up_threshold_percent": 51,
            "scale_down_threshold_percent": 49,
        },
    ],
)
def test_workers_at_the_edge_of_the_cel_rules_are_accepted(workers: dict[str, int]) -> None:
    builders.make_tenant().workers(**workers).model()


def test_cel_messages_name_the_fields_they_compare() -> None:
    assert "minReplicas" in tenant.REPLICAS_ORDERED.message
    assert "maxReplicas" in tenant.REPLICAS_ORDERED.message
    for field in (
        "scaleDownThresholdPercent",
        "targetCPUUtilizationPercentage",
        "scaleUpThresholdPercent",
    ):
        assert field in tenant.THRESHOLDS_ORDERED.message
        assert field in tenant.THRESHOLDS_ORDERED.rule


# Field constraints


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.tier", "gold"),
        ("spec.namespace", "Tenant_Acme"),
        ("spec.namespace", "a" * 64),
        ("spec.regions", []),
        ("spec.regions", [f"r{n}" for n in range(11)]),
        ("spec.rateLimit", {"requestsPerMinute": 0}),
        ("spec.rateLimit", {"requestsPerMinute": 100_001}),
        ("spec.rateLimit", {"burst": 0}),
        ("spec.quota", {"maxBatchSize": 101}),
        ("spec.quota", {"maxActiveBatches": 0}),
        ("spec.sla", {"batchDeadlineSeconds": 9}),
        ("spec.workers", {"maxReplicas": 51}),
        ("spec.workers", {"minReplicas": 0}),
        ("spec.workers", {"pool": "private"}),
        ("spec.workers", {"providers": []}),
        ("spec.workers", {"providers": [{"name": "Local AI"}]}),
    ],
)
def test_invalid_field_is_rejected_at_its_path(path: str, value: Any) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        builders.make_tenant().set(path, value).model()
    assert all(where.startswith(path) for where in builders.field_errors(caught.value))


def test_missing_namespace_is_reported_as_missing() -> None:
    obj = builders.make_tenant().obj()
    del obj["spec"]["namespace"]
    with pytest.raises(pydantic.ValidationError) as caught:
        tenant.Tenant.model_validate(obj)
    assert builders.field_errors(caught.value) == {"spec.namespace": "Field required"}


def test_repeated_region_is_rejected_naming_it() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        builders.make_tenant().regions("us-east", "eu-west", "us-east").model()
    assert builders.field_errors(caught.value) == {
        "spec.regions": "Value error, regions must be unique, repeated: us-east"
    }


def test_repeated_provider_is_rejected_naming_it() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        builders.make_tenant().providers("local", "local").model()
    assert builders.field_errors(caught.value) == {
        "spec.workers.providers": "Value error, provider names must be unique, repeated: local"
    }


def test_unknown_spec_field_is_rejected_by_name() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        builders.make_tenant().set("spec.workers.maxReplica", 5).model()
    assert builders.field_errors(caught.value) == {
        "spec.workers.maxReplica": "Extra inputs are not permitted"
    }


def test_condition_reason_must_be_camel_case() -> None:
    condition = FROM_APISERVER["status"]["conditions"][0]
    with pytest.raises(pydantic.ValidationError) as caught:
        meta.Condition.model_validate({**condition, "reason": "pools ready"})
    assert list(builders.field_errors(caught.value)) == ["reason"]


def test_condition_status_is_true_false_or_unknown() -> None:
    condition = FROM_APISERVER["status"]["conditions"][0]
    with pytest.raises(pydantic.ValidationError) as caught:
        meta.Condition.model_validate({**condition, "status": "Yes"})
    assert list(builders.field_errors(caught.value)) == ["status"]
