"""A pool's worker pod profile: its layers resolved, and the pod spec fields it becomes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from imagegen.api import operatorconfig, podprofile, tenant
from imagegen.render import quantity


class UnknownProfileError(ValueError):
    """A Tenant names a profile the operator config does not have."""

    def __init__(self, *, name: str, config: operatorconfig.OperatorConfig) -> None:
        known = ", ".join(sorted(config.profiles or {})) or "none"
        super().__init__(
            f"spec.workers.profile: unknown profile {name!r}; the operator config has: {known}"
        )


def resolve(
    *, workers: tenant.Workers, config: operatorconfig.OperatorConfig
) -> podprofile.PodProfile:
    """The pool's profile: the config's requests and limits, its `workers.profile`, the
    named profile, then the pool's own `pod`. Raises UnknownProfileError."""
    named = None
    if workers.profile is not None:
        named = (config.profiles or {}).get(workers.profile)
        if named is None:
            raise UnknownProfileError(name=workers.profile, config=config)
    pods = config.workers
    base = podprofile.PodProfile(
        resources=podprofile.Resources(
            requests={"cpu": pods.cpu_request, "memory": pods.memory_request},
            limits={"cpu": pods.cpu_limit, "memory": pods.memory_limit},
        )
    )
    return podprofile.merge(base, pods.profile, named, workers.pod)


def resources(profile: podprofile.PodProfile) -> dict[str, Any]:
    """The container's resources, canonical as the apiserver returns them. An extended
    resource goes into both requests and limits: Kubernetes wants them equal."""
    given = profile.resources or podprofile.Resources()
    extended = podprofile.extended_resources(profile)
    requests = {**(given.requests or {}), **extended}
    limits = {**(given.limits or {}), **extended}
    return {
        "requests": {name: quantity.canonical(value) for name, value in requests.items()},
        "limits": {name: quantity.canonical(value) for name, value in limits.items()},
    }


def pod_fields(*, profile: podprofile.PodProfile, selector: dict[str, str]) -> dict[str, Any]:
    """The pod spec fields the profile sets (placement, priority, runtime class);
    `selector` picks the pool's own pods for topology spread."""
    fields: dict[str, Any] = {}
    if profile.node_selector:
        fields["nodeSelector"] = dict(profile.node_selector)
    if profile.tolerations:
        fields["tolerations"] = [
            toleration.model_dump(mode="json", exclude_none=True)
            for toleration in profile.tolerations
        ]
    if profile.affinity is not None:
        affinity = profile.affinity.model_dump(mode="json", exclude_none=True)
        if affinity:
            fields["affinity"] = affinity
    if profile.topology_spread:
        fields["topologySpreadConstraints"] = [
            {
                "maxSkew": spread.max_skew,
                "topologyKey": spread.topology_key,
                "whenUnsatisfiable": spread.when_unsatisfiable,
                "labelSelector": {"matchLabels": dict(selector)},
            }
            for spread in profile.topology_spread
        ]
    if profile.priority_class_name is not None:
        fields["priorityClassName"] = profile.priority_class_name
    if profile.runtime_class_name is not None:
        fields["runtimeClassName"] = profile.runtime_class_name
    return fields


def digest(profile: podprofile.PodProfile) -> str:
    """A short digest of the profile, for the pod template's annotation: a field that
    was dropped from the profile changes it, so the operator applies (and the drift
    check, which looks only for fields we want, sees a difference)."""
    text = json.dumps(profile.model_dump(mode="json", exclude_none=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
