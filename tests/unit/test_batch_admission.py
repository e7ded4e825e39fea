"""Admission of a batch against its Tenant, and the choice of its region."""

from imagegen.api import imagebatch, tenant
from imagegen.controller import admission, dispatch
from tests import builders


def batch(items: int = 3, namespace: str = "tenant-acme") -> imagebatch.ImageBatch:
    return (
        builders.make_batch("b", tenant="acme").namespace(namespace).items(items).uid("u1").model()
    )


def acme(**quota: int) -> tenant.Tenant:
    return builders.make_tenant("acme").namespace("tenant-acme").quota(**quota).uid("t1").model()


def test_a_batch_within_quota_is_admitted() -> None:
    assert (
        admission.check(batch=batch(), owner=acme(), active_batches=0, namespace_holder="acme")
        is None
    )


def test_an_unknown_tenant_is_refused_naming_spec_tenant() -> None:
    refusal = admission.check(batch=batch(), owner=None, active_batches=0, namespace_holder="acme")
    assert refusal is not None
    assert refusal.reason == "TenantNotFound"
    assert refusal.message.startswith("spec.tenant:")


def test_a_batch_outside_the_tenants_namespace_is_refused() -> None:
    refusal = admission.check(
        batch=batch(namespace="elsewhere"), owner=acme(), active_batches=0, namespace_holder="acme"
    )
    assert refusal is not None
    assert refusal.reason == "NamespaceNotOwned"


def test_a_batch_in_a_namespace_another_tenant_holds_is_refused_naming_it() -> None:
    refusal = admission.check(
        batch=batch(), owner=acme(), active_batches=0, namespace_holder="metaphysical"
    )
    assert refusal is not None
    assert refusal.reason == "NamespaceNotHeld"
    assert refusal.message.startswith("metadata.namespace:")
    assert "'metaphysical'" in refusal.message


def test_a_batch_in_a_namespace_nobody_holds_is_refused() -> None:
    refusal = admission.check(batch=batch(), owner=acme(), active_batches=0, namespace_holder=None)
    assert refusal is not None
    assert refusal.reason == "NamespaceNotHeld"


def test_a_batch_over_max_batch_size_is_refused_naming_the_quota() -> None:
    refusal = admission.check(
        batch=batch(items=5),
        owner=acme(max_batch_size=4),
        active_batches=0,
        namespace_holder="acme",
    )
    assert refusal is not None
    assert refusal.reason == "BatchTooLarge"
    assert "spec.items" in refusal.message
    assert "maxBatchSize" in refusal.message


def test_a_batch_beyond_max_active_batches_is_refused() -> None:
    refusal = admission.check(
        batch=batch(),
        owner=acme(max_active_batches=2),
        active_batches=2,
        namespace_holder="acme",
    )
    assert refusal is not None
    assert refusal.reason == "TooManyActiveBatches"


def test_a_provider_the_tenant_does_not_run_is_refused_naming_the_item() -> None:
    obj = builders.make_batch("b", tenant="acme").namespace("tenant-acme").items(2).uid("u1")
    obj = obj.set("spec.items", [*obj.obj()["spec"]["items"], {"id": "x", "prompt": "p",
                                                               "provider": "openai"}])  # fmt: skip
    refusal = admission.check(
        batch=obj.model(), owner=acme(), active_batches=0, namespace_holder="acme"
    )
    assert refusal is not None
    assert refusal.reason == "ProviderNotAllowed"
    assert refusal.message.startswith("spec.items[2].provider:")


def load(queued: int = 0, reachable: bool = True, weight: int = 1) -> dispatch.RegionLoad:
    return dispatch.RegionLoad(reachable=reachable, queued=queued, weight=weight)


def test_dispatch_prefers_the_first_reachable_region() -> None:
    loads = {"us-east": load(reachable=False), "eu-west": load(), "asia-pacific": load()}
    assert (
        dispatch.choose(preference=["us-east", "eu-west", "asia-pacific"], loads=loads) == "eu-west"
    )


def test_dispatch_passes_over_a_region_with_a_long_backlog() -> None:
    loads = {"us-east": load(queued=5000), "eu-west": load(queued=10)}
    assert (
        dispatch.choose(preference=["us-east", "eu-west"], loads=loads, backlog_limit=1000)
        == "eu-west"
    )


def test_dispatch_takes_the_least_busy_when_all_are_busy() -> None:
    loads = {"us-east": load(queued=5000), "eu-west": load(queued=3000)}
    assert (
        dispatch.choose(preference=["us-east", "eu-west"], loads=loads, backlog_limit=1000)
        == "eu-west"
    )


def test_a_heavier_region_keeps_a_backlog_its_weight_allows() -> None:
    loads = {"us-east": load(queued=1500, weight=2), "eu-west": load(queued=10)}
    assert (
        dispatch.choose(preference=["us-east", "eu-west"], loads=loads, backlog_limit=1000)
        == "us-east"
    )


def test_when_all_are_busy_the_fewest_queued_per_unit_of_weight_wins() -> None:
    loads = {"us-east": load(queued=5000), "eu-west": load(queued=8000, weight=4)}
    assert (
        dispatch.choose(preference=["us-east", "eu-west"], loads=loads, backlog_limit=1000)
        == "eu-west"
    )


def test_dispatch_finds_nothing_when_no_region_answers() -> None:
    assert dispatch.choose(preference=["us-east"], loads={"us-east": load(reachable=False)}) is None


def test_a_work_item_takes_the_batch_defaults_and_the_tenants_providers() -> None:
    owner = builders.make_tenant("acme").providers("local", "openai").uid("t1").model()
    obj = builders.make_batch("b", tenant="acme").items(1).uid("u1").model()
    work = dispatch.work_item(item=obj.spec.items[0], batch=obj, owner=owner)
    assert (work.width, work.height, work.format) == (1024, 1024, "png")
    assert work.providers == ("local", "openai")
