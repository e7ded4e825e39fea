"""Builders of Tenant and ImageBatch CR dicts, so that a test shows only what matters to it.

    builders.make_tenant("acme").tier("priority").regions("us-east").obj()
    builders.make_batch("lighthouse", tenant="acme").items(3).obj()

Keyword arguments name fields in snake_case, as the models do; the dicts are camelCase,
as the apiserver has them.
"""

import copy
import uuid
from typing import Any, Self

import pydantic

from imagegen.api import imagebatch, meta, tenant


def _wire(model: type[pydantic.BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    """Fields of `model` given by Python name, keyed by their wire names."""
    return {model.model_fields[name].alias or name: value for name, value in fields.items()}


class _Builder:
    def __init__(self, obj: dict[str, Any]) -> None:
        self._obj = obj

    def set(self, path: str, value: Any) -> Self:
        """Set a field by its dotted wire path, such as spec.workers.minReplicas."""
        *parents, last = path.split(".")
        node = self._obj
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
        return self

    def uid(self, uid: str) -> Self:
        return self.set("metadata.uid", uid)

    def generation(self, generation: int) -> Self:
        return self.set("metadata.generation", generation)

    def label(self, key: str, value: str) -> Self:
        self._obj["metadata"].setdefault("labels", {})[key] = value
        return self

    def obj(self) -> dict[str, Any]:
        """The CR dict, a copy that the test may change freely."""
        return copy.deepcopy(self._obj)


class TenantBuilder(_Builder):
    """A Tenant CR dict under construction."""

    def tier(self, tier: tenant.Tier) -> Self:
        return self.set("spec.tier", tier)

    def namespace(self, namespace: str) -> Self:
        return self.set("spec.namespace", namespace)

    def regions(self, *regions: str) -> Self:
        return self.set("spec.regions", list(regions))

    def rate_limit(self, **fields: Any) -> Self:
        return self._merge("rateLimit", _wire(tenant.RateLimit, fields))

    def quota(self, **fields: Any) -> Self:
        return self._merge("quota", _wire(tenant.Quota, fields))

    def sla(self, **fields: Any) -> Self:
        return self._merge("sla", _wire(tenant.SLA, fields))

    def workers(self, **fields: Any) -> Self:
        return self._merge("workers", _wire(tenant.Workers, fields))

    def providers(self, *names: str) -> Self:
        return self._merge("workers", {"providers": [{"name": name} for name in names]})

    def status(self, **fields: Any) -> Self:
        self._obj.setdefault("status", {}).update(_wire(tenant.TenantStatus, fields))
        return self

    def model(self) -> tenant.Tenant:
        return tenant.Tenant.model_validate(self.obj())

    def _merge(self, field: str, values: dict[str, Any]) -> Self:
        self._obj["spec"].setdefault(field, {}).update(values)
        return self


class BatchBuilder(_Builder):
    """An ImageBatch CR dict under construction."""

    def tenant(self, name: str) -> Self:
        return self.set("spec.tenant", name)

    def namespace(self, namespace: str) -> Self:
        return self.set("metadata.namespace", namespace)

    def priority(self, priority: imagebatch.Priority) -> Self:
        return self.set("spec.priority", priority)

    def annotation(self, key: str, value: str) -> Self:
        self._obj["metadata"].setdefault("annotations", {})[key] = value
        return self

    def defaults(self, **fields: Any) -> Self:
        self._obj["spec"].setdefault("defaults", {}).update(_wire(imagebatch.Defaults, fields))
        return self

    def items(self, count: int, **fields: Any) -> Self:
        """Replace the items with `count` items i0, i1, ..., each with `fields`."""
        return self.set(
            "spec.items",
            [_item(f"i{n}", {"prompt": f"a lighthouse, take {n}", **fields}) for n in range(count)],
        )

    def item(self, item_id: str, **fields: Any) -> Self:
        """Add one item; the prompt is made up unless given."""
        item = _item(item_id, {"prompt": f"a picture called {item_id}", **fields})
        self._obj["spec"]["items"].append(item)
        return self

    def webhook(self, url: str, *events: imagebatch.WebhookEvent) -> Self:
        hook: dict[str, Any] = {"url": url}
        if events:
            hook["events"] = list(events)
        return self.set("spec.webhook", hook)

    def cancel(self, cancel: bool = True) -> Self:
        return self.set("spec.cancel", cancel)

    def status(self, **fields: Any) -> Self:
        self._obj.setdefault("status", {}).update(_wire(imagebatch.ImageBatchStatus, fields))
        return self

    def phase(self, phase: imagebatch.Phase) -> Self:
        return self.status(phase=phase)

    def model(self) -> imagebatch.ImageBatch:
        return imagebatch.ImageBatch.model_validate(self.obj())


def _item(item_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"id": item_id, **_wire(imagebatch.Item, fields)}


def make_tenant(name: str = "acme") -> TenantBuilder:
    """The smallest valid Tenant: namespace tenant-NAME, one region, everything else default."""
    return TenantBuilder(
        {
            "apiVersion": meta.API_VERSION,
            "kind": "Tenant",
            "metadata": {"name": name},
            "spec": {"namespace": f"tenant-{name}", "regions": ["us-east"]},
        }
    )


def make_batch(name: str = "batch", *, tenant: str = "acme") -> BatchBuilder:
    """The smallest valid ImageBatch of `tenant`: in tenant-TENANT, one item i0."""
    return BatchBuilder(
        {
            "apiVersion": meta.API_VERSION,
            "kind": "ImageBatch",
            "metadata": {"name": name, "namespace": f"tenant-{tenant}"},
            "spec": {"tenant": tenant, "items": [_item("i0", {"prompt": "a lighthouse at dawn"})]},
        }
    )


def succeeded_batch_with_webhook(name: str, *, tenant: str, url: str) -> dict[str, Any]:
    """A batch that has just succeeded, whose webhook is `url`, as the apiserver would hold
    it (with a uid): what a batch.completed webhook event is derived from."""
    return (
        make_batch(name, tenant=tenant)
        .uid(str(uuid.uuid4()))
        .webhook(url)
        .phase("Succeeded")
        .status(progress="1/1")
        .obj()
    )


def field_errors(error: pydantic.ValidationError) -> dict[str, str]:
    """The messages of a ValidationError by dotted wire path, such as spec.items.0.size."""
    return {".".join(str(part) for part in line["loc"]): line["msg"] for line in error.errors()}
