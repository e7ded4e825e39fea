"""What the operator records for Prometheus from facts its handlers already hold: a
Tenant's counters from its first reconcile, pool replicas from the HPA, batches by phase
under a bounded tenant label."""

from collections.abc import Iterator

import pytest

from imagegen.api import imagebatch, tenant
from imagegen.controller import observe
from imagegen.metrics import labels
from imagegen.metrics import operator as metrics
from tests import builders


def value(name: str, **labels_: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels_)


@pytest.fixture(autouse=True)
def forget_everything() -> Iterator[None]:
    yield
    for name in list(observe.TENANTS):
        observe.tenant_gone(name=name, regions_left=["us-east", "eu-west", "asia-pacific"])
    metrics.BATCHES.__init__()  # type: ignore[misc]


def seen(name: str, tier: tenant.Tier = "priority") -> None:
    obj = builders.make_tenant(name).tier(tier).regions("us-east", "eu-west").obj()
    observe.tenant_seen(tenant.Tenant.model_validate(obj))


def test_a_reconciled_tenants_sla_counters_read_zero_until_a_batch_ends() -> None:
    seen("observed")
    assert value("imagegen_batches_sla_missed_total", tenant="observed", tier="priority") == 0
    assert value("imagegen_batches_admitted_total", tenant="observed", tier="priority") == 0


def test_a_tier_change_moves_the_counters_and_deletion_removes_them() -> None:
    seen("moving", tier="standard")
    seen("moving", tier="priority")
    assert value("imagegen_batches_sla_met_total", tenant="moving", tier="standard") is None
    assert value("imagegen_batches_sla_met_total", tenant="moving", tier="priority") == 0
    observe.tenant_gone(name="moving", regions_left=["us-east", "eu-west"])
    assert value("imagegen_batches_sla_met_total", tenant="moving", tier="priority") is None


def test_pool_replicas_come_from_the_hpas_spec_and_status() -> None:
    hpa = {"spec": {"minReplicas": 3, "maxReplicas": 50},
           "status": {"currentReplicas": 4, "desiredReplicas": 6}}  # fmt: skip
    observe.pool_seen(tenant_name="pool", region="us-east", live={"HorizontalPodAutoscaler": hpa})
    read = {
        name: value(f"imagegen_pool_{name}", tenant="pool", region="us-east")
        for name in ("replicas", "desired_replicas", "min_replicas", "max_replicas")
    }
    assert read == {"replicas": 4, "desired_replicas": 6, "min_replicas": 3, "max_replicas": 50}
    observe.tenant_gone(name="pool", regions_left=["us-east"])
    assert value("imagegen_pool_replicas", tenant="pool", region="us-east") is None


def test_a_batch_rejected_for_naming_no_tenant_is_counted_under_unknown() -> None:
    obj = builders.make_batch("stray", tenant="no-such-tenant").uid("u-stray").obj()
    batch = imagebatch.ImageBatch.model_validate(obj)
    observe.batch_status(batch=batch, status=imagebatch.ImageBatchStatus(phase="Rejected"))
    assert (
        value("imagegen_batches", tenant=labels.UNKNOWN_TENANT, tier="unknown", phase="Rejected")
        == 1
    )
    assert (
        value("imagegen_batches", tenant="no-such-tenant", tier="unknown", phase="Rejected") is None
    )
