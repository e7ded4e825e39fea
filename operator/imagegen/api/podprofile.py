"""Worker pod profiles: what a pool's pods ask of the scheduler (resources, GPUs, nodes,
tolerations, affinity, spread, priority, runtime class).

A profile comes in layers, each optional, merged in this order (later wins):
the operator config's `workers.profile` (every pool), a named profile of the operator
config's `profiles` (a Tenant's `workers.profile: gpu-a100`), then the Tenant's own
`workers.pod`. Maps (resource requests and limits, nodeSelector) merge key by key; lists
and single values are replaced whole, so a Tenant's tolerations are exactly the ones it
(or its named profile) lists.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

import pydantic

from imagegen.api import meta

PROFILE_ANNOTATION = f"{meta.GROUP}/profile-digest"
"""Annotation of a worker pod template: the digest of the pool's resolved profile."""

Quantity = Annotated[
    str,
    pydantic.Field(
        pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|k|M|G)?$",
        max_length=32,
        description="A non-negative quantity, such as 500m, 2 or 256Mi.",
    ),
]
"""A non-negative Kubernetes quantity: "500m", "2", "256Mi"."""

QUALIFIED_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
QualifiedName = Annotated[
    str, pydantic.Field(min_length=1, max_length=316, pattern=QUALIFIED_NAME_PATTERN)
]
"""A label key, taint key or resource name: an optional DNS prefix and a name."""
LabelValue = Annotated[
    str,
    pydantic.Field(
        max_length=63,
        pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$",
        description="A label value.",
    ),
]
DnsSubdomain = Annotated[
    str,
    pydantic.Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    ),
]

STANDARD_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
"""Resources that may be overcommitted (a limit above the request); any other, such as
nvidia.com/gpu, is an extended resource: whole units, request equal to limit."""

EXISTS_HAS_NO_VALUE: meta.Rule = meta.Rule(
    rule="self.operator != 'Exists' || !has(self.value) || self.value == ''",
    message="value must be empty when operator is Exists",
    field_path=".value",
)
EMPTY_KEY_NEEDS_EXISTS: meta.Rule = meta.Rule(
    rule="has(self.key) || self.operator == 'Exists'",
    message="a toleration without key must use operator Exists (it tolerates every taint)",
    field_path=".operator",
)
SECONDS_NEED_NO_EXECUTE: meta.Rule = meta.Rule(
    rule="!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
    message="tolerationSeconds applies to effect NoExecute only",
    field_path=".tolerationSeconds",
)


class Toleration(meta.Model):
    """A taint the pool's pods tolerate, as Kubernetes spells a toleration."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=meta.validations(
            EXISTS_HAS_NO_VALUE, EMPTY_KEY_NEEDS_EXISTS, SECONDS_NEED_NO_EXECUTE
        )
    )

    key: QualifiedName | None = None
    """Taint key; absent with operator Exists: every taint."""
    operator: Literal["Exists", "Equal"] = "Equal"
    """Equal: the taint's value must equal `value`; Exists: any value."""
    value: LabelValue | None = None
    """Taint value for operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to tolerate; absent: every effect."""
    toleration_seconds: Annotated[int, pydantic.Field(ge=0)] | None = None
    """For NoExecute: how long a pod stays on a node after the taint appears."""

    @pydantic.model_validator(mode="after")
    def _check(self) -> Self:
        if self.operator == "Exists" and self.value:
            raise ValueError(EXISTS_HAS_NO_VALUE.message)
        if self.key is None and self.operator != "Exists":
            raise ValueError(EMPTY_KEY_NEEDS_EXISTS.message)
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError(SECONDS_NEED_NO_EXECUTE.message)
        return self


class TopologySpread(meta.Model):
    """Spread the pool's pods over a topology (zones, nodes); the operator adds the
    selector that matches the pool's own pods."""

    topology_key: QualifiedName
    """Node label whose values are the domains, such as topology.kubernetes.io/zone."""
    max_skew: Annotated[int, pydantic.Field(ge=1, le=100)] = 1
    """Most pods one domain may have above the least loaded one."""
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = "ScheduleAnyway"
    """DoNotSchedule leaves a pod Pending rather than break the skew."""


class NodeSelectorRequirement(meta.Model):
    """A node label test, as Kubernetes spells it."""

    key: QualifiedName
    """Node label key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    """How the label's value is tested."""
    values: Annotated[list[LabelValue], pydantic.Field(max_length=64)] | None = None
    """Values for In and NotIn (one integer for Gt and Lt); none for Exists and DoesNotExist."""


class NodeSelectorTerm(meta.Model):
    """Node label tests that must all hold."""

    match_expressions: Annotated[
        list[NodeSelectorRequirement], pydantic.Field(min_length=1, max_length=16)
    ]
    """The tests, all of which must hold."""


class PreferredNode(meta.Model):
    """A node preference with its weight."""

    weight: Annotated[int, pydantic.Field(ge=1, le=100)]
    """Weight among the preferences."""
    preference: NodeSelectorTerm
    """Nodes preferred."""


class RequiredNodes(meta.Model):
    """Nodes the pods must run on: any one of the terms holds."""

    node_selector_terms: Annotated[
        list[NodeSelectorTerm], pydantic.Field(min_length=1, max_length=16)
    ]
    """Terms ORed together."""


class NodeAffinity(meta.Model):
    """Kubernetes NodeAffinity: required and preferred node label tests."""

    required_during_scheduling_ignored_during_execution: RequiredNodes | None = None
    """Nodes the pods may run on."""
    preferred_during_scheduling_ignored_during_execution: (
        Annotated[list[PreferredNode], pydantic.Field(max_length=16)] | None
    ) = None
    """Nodes the pods prefer."""


class Affinity(meta.Model):
    """Kubernetes pod affinity, the node part (kubectl explain pod.spec.affinity.nodeAffinity);
    spreading over zones or nodes is `topologySpread`'s job."""

    node_affinity: NodeAffinity | None = None
    """Node affinity of the pods."""


def _qualified_keys(what: str) -> Any:
    """A map keyed by qualified names (resource names, label keys): pydantic checks the
    keys with the validator below, the apiserver with the same pattern in CEL."""
    rule = meta.Rule(
        rule=f"self.all(k, k.matches(r'{QUALIFIED_NAME_PATTERN}'))",
        message=f"{what} must be qualified names such as nvidia.com/gpu",
    )
    return pydantic.Field(default=None, max_length=32, json_schema_extra=meta.validations(rule))


def _check_keys(values: dict[str, str] | None, *, what: str) -> dict[str, str] | None:
    for key in values or {}:
        if len(key) > 316 or not re.match(QUALIFIED_NAME_PATTERN, key):
            raise ValueError(f"{what}: {key!r} is not a qualified name such as nvidia.com/gpu")
    return values


class Resources(meta.Model):
    """Requests and limits per resource name (cpu, memory, nvidia.com/gpu, ...)."""

    requests: dict[str, Quantity] | None = _qualified_keys("resource names")
    """What the scheduler reserves; the HPA's CPU utilization is measured against cpu."""
    limits: dict[str, Quantity] | None = _qualified_keys("resource names")
    """What the container may use at most."""

    @pydantic.field_validator("requests", "limits")
    @classmethod
    def _names(cls, values: dict[str, str] | None) -> dict[str, str] | None:
        return _check_keys(values, what="resource names")

    @pydantic.model_validator(mode="after")
    def _check_extended(self) -> Self:
        requests, limits = self.requests or {}, self.limits or {}
        for where, values in (("requests", requests), ("limits", limits)):
            for name, value in values.items():
                if name not in STANDARD_RESOURCES and not value.isdigit():
                    raise ValueError(
                        f"{where}[{name}]: an extended resource takes a whole number, not {value}"
                    )
        for name in sorted(set(requests) & set(limits) - STANDARD_RESOURCES):
            if requests[name] != limits[name]:
                raise ValueError(
                    f"limits[{name}]: must equal requests[{name}]"
                    " (an extended resource cannot be overcommitted)"
                )
        return self


class PodProfile(meta.Model):
    """What a worker pool's pods ask of the scheduler; every field optional (a layer)."""

    resources: Resources | None = None
    """Requests and limits, merged per resource name over the layers below."""
    node_selector: dict[str, LabelValue] | None = _qualified_keys("nodeSelector keys")
    """Node labels the pods require, merged per key over the layers below."""
    tolerations: Annotated[list[Toleration], pydantic.Field(max_length=32)] | None = None
    """Taints the pods tolerate (a dedicated node pool's taint)."""
    affinity: Affinity | None = None
    """Node and pod (anti-)affinity."""
    topology_spread: Annotated[list[TopologySpread], pydantic.Field(max_length=8)] | None = None
    """Spread constraints over topology domains."""

    @pydantic.field_validator("node_selector")
    @classmethod
    def _label_keys(cls, values: dict[str, str] | None) -> dict[str, str] | None:
        return _check_keys(values, what="nodeSelector keys")

    priority_class_name: DnsSubdomain | None = None
    """PriorityClass of the pods: decides who preempts whom when a region is full."""
    runtime_class_name: DnsSubdomain | None = None
    """RuntimeClass of the pods, such as nvidia."""


def merge(*layers: PodProfile | None) -> PodProfile:
    """The layers merged in order, later over earlier (maps key by key)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        for field in layer.model_fields_set:
            value = getattr(layer, field)
            if value is None:
                continue
            if field == "resources":
                merged[field] = _merge_resources(merged.get(field), value)
            elif field == "node_selector":
                merged[field] = {**merged.get(field, {}), **value}
            else:
                merged[field] = value
    return PodProfile.model_validate(merged)


def _merge_resources(below: Resources | None, above: Resources) -> Resources:
    if below is None:
        return above
    return Resources(
        requests={**(below.requests or {}), **(above.requests or {})} or None,
        limits={**(below.limits or {}), **(above.limits or {})} or None,
    )


def extended_resources(profile: PodProfile) -> dict[str, str]:
    """The profile's extended resources (such as nvidia.com/gpu) and their counts."""
    resources = profile.resources or Resources()
    found = {**(resources.limits or {}), **(resources.requests or {})}
    return {name: value for name, value in found.items() if name not in STANDARD_RESOURCES}
