"""Abuse at the API's own limits, on the real apiserver, operator and gateway.

- Every bound of the CRDs' schemas (read from the CRDs themselves, so a new bounded field
  is covered without a new case) at exactly its limit is accepted, one past it refused
  with the field named; the CEL bounds too.
- Every bound of the batch API's request body, the same way, through the gateway.
- Hypothesis makes ImageBatches and Tenants, valid or not, and applies them: whatever the
  apiserver accepts, the operator decides without an unhandled error, and deletes.

`make test` runs a few generated examples, the same ones each time; `make fuzz` runs many,
new ones each time (FUZZ_EXAMPLES, FUZZ_RANDOM).
"""

from __future__ import annotations

import copy
import os
import pathlib
import re
from collections.abc import Iterator
from typing import Any

import hypothesis
import lightkube
import pytest
import yaml
from hypothesis import strategies as st
from lightkube import codecs
from lightkube.resources import core_v1

from imagegen import resources
from imagegen.api import imagebatch, tenant
from imagegen.gateway import schemas
from tests import builders
from tests.integration import apiobjects, waiting
from tests.integration.gatewayworld import GatewayWorld
from tests.integration.tenantworld import World, new_tenant, unique_name

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
FUZZ = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("FUZZ_RANDOM") != "1",
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)

# Bounds, read from a JSON schema


def bounds(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, str, int]]:
    """(dotted path with [] for list elements and {} / {key} for a map's values / keys,
    keyword, limit) of every max bound."""
    for keyword in ("maxLength", "maxItems", "maxProperties", "maximum"):
        if keyword in schema:
            yield path, keyword, int(schema[keyword])
    for name, sub in (schema.get("properties") or {}).items():
        yield from bounds(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        yield from bounds(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from bounds(schema["additionalProperties"], f"{path}{{}}")
    if isinstance(schema.get("propertyNames"), dict):
        yield from bounds(schema["propertyNames"], f"{path}{{key}}")


def crd_spec_schema(file: str) -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / file).read_text())
    spec: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    return spec["spec"]


def text_of(path: str, length: int) -> str:
    """A string of `length` characters that the field's pattern accepts when it can."""
    if path.endswith("size"):
        return "1024x1024"[:length] if length <= 9 else "1" * (length - 5) + "x1024"
    if path.endswith("url"):
        return "http://127.0.0.2/" + "a" * (length - 17)
    if path.endswith(("id", "tenant", "provider", "namespace", "name", "regions[]")):
        return "a" * length
    if path.endswith(("requests{}", "limits{}")):  # a quantity
        return "1" * length
    if path.endswith(("key", "topologyKey")):  # a qualified name: prefix/name, name <= 63
        return "a" * length if length <= 63 else "a" * (length - 64) + "/" + "a" * 63
    return "p" * length


def value_of(path: str, keyword: str, limit: int, *, template: Any) -> Any:
    """The field's value at `limit` (characters, items or number)."""
    if keyword == "maximum":
        return limit
    if keyword == "maxLength":
        return text_of(path, limit)
    if isinstance(template, dict):  # a map: distinct keys, each with the first's value
        first = next(iter(template.values()))
        return {f"r{n}": first for n in range(limit)}
    element = template[0]
    if isinstance(element, str):  # a set of strings: distinct, each valid
        names = imagebatch.WebhookEvent.__args__ if path.endswith("events") else ()
        choices = [*names, *(f"r{n}" for n in range(limit))]
        return [*[c for c in dict.fromkeys(choices) if c not in template][: limit - 1], element]
    made = []
    for n in range(limit):
        item = copy.deepcopy(element)
        for key in ("id", "name"):
            if key in item:
                item[key] = f"{item[key]}-{n}"[-63:]
        made.append(item)
    return made


def place(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of obj with the value at path ([] is a list's first element, {} a map's
    first value)."""
    copied = copy.deepcopy(obj)
    *above, last = _steps(path)
    parent = _walk(copied, above)
    parent[_key(parent, last)] = value
    return copied


def current(obj: dict[str, Any], path: str) -> Any:
    return _walk(obj, _steps(path))


def _walk(node: Any, steps: list[str]) -> Any:
    for step in steps:
        node = node[_key(node, step)]
    return node


def _steps(path: str) -> list[str]:
    return path.replace("[]", ".[]").replace("{}", ".{}").split(".")


def _key(node: Any, step: str) -> Any:
    if step == "[]":
        return 0
    if step == "{}":
        return next(iter(node))
    return step


def full_batch() -> dict[str, Any]:
    """A batch with every optional field present, so that every bound has a place."""
    obj = (
        builders.make_batch(unique_name("bound"), tenant="bounds")
        .webhook("http://127.0.0.2/hook", "succeeded")
        .obj()
    )
    obj["spec"]["defaults"] = {"size": "64x64", "provider": "local", "format": "png"}
    obj["spec"]["items"][0].update(
        {"negativePrompt": "fog", "seed": 7, "size": "64x64", "provider": "local"}
    )
    obj["spec"]["ttlSecondsAfterFinished"] = 3600
    return obj


def full_tenant() -> dict[str, Any]:
    """A Tenant with every optional field present."""
    obj = (
        builders.make_tenant(unique_name("bound"))
        .regions("us-east")
        .rate_limit(requests_per_minute=60, burst=120)
        .quota(max_batch_size=100, max_active_batches=10, max_images_per_minute=600)
        .sla(batch_deadline_seconds=300)
        .workers(
            min_replicas=3,
            max_replicas=50,
            scale_down_stabilization_seconds=60,
            target_cpu_utilization_percentage=70,
            scale_up_threshold_percent=80,
            scale_down_threshold_percent=30,
        )
        .providers("local")
        .obj()
    )
    obj["spec"]["retention"] = {"batchTTLSeconds": 86400}
    obj["spec"]["workers"].update(profile="gpu", pod=FULL_POD_PROFILE)
    return obj


SELECTOR = {"key": "zone", "operator": "In", "values": ["a"]}
FULL_POD_PROFILE = {
    "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}},
    "nodeSelector": {"pool": "gpu"},
    "tolerations": [{"key": "pool", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [SELECTOR]}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [SELECTOR]}}
            ],
        }
    },
    "topologySpread": [{"topologyKey": "zone", "maxSkew": 1}],
    "priorityClassName": "imagegen-premium",
    "runtimeClassName": "nvidia",
}
"""Every field of a worker pod profile (api/podprofile.py), so each bound has a place."""


def dry_run(kube: lightkube.Client, obj: dict[str, Any]) -> str | None:
    """None when the apiserver would take obj, else its refusal."""
    try:
        kube.create(codecs.from_dict(obj), dry_run=True)
    except lightkube.ApiError as error:
        return str(error.status.message)
    return None


def adjusted(path: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Other fields moved so that CEL's orders (minReplicas <= maxReplicas, scale-down <
    target < scale-up) leave the bound under test to decide."""
    workers = obj["spec"].get("workers", {})
    if path == "spec.workers.minReplicas":
        workers["maxReplicas"] = 50
    if path == "spec.workers.scaleUpThresholdPercent":
        workers.update(scaleDownThresholdPercent=1, targetCPUUtilizationPercentage=2)
    if path == "spec.workers.targetCPUUtilizationPercentage":
        workers.update(scaleDownThresholdPercent=1, scaleUpThresholdPercent=100)
    return obj


ORDERED_BELOW_MAX = {
    "spec.workers.targetCPUUtilizationPercentage",
    "spec.workers.scaleDownThresholdPercent",
}
"""Bounds whose own limit CEL's order forbids (a target of 100 leaves scale-up nowhere):
at the limit only the order may refuse them, never the bound."""


CRD_BOUNDS = [
    ("imagebatches.yaml", full_batch, *bound)
    for bound in bounds(crd_spec_schema("imagebatches.yaml"), "spec")
] + [
    ("tenants.yaml", full_tenant, *bound)
    for bound in bounds(crd_spec_schema("tenants.yaml"), "spec")
]


@pytest.fixture(scope="module")
def bounds_namespace(kube: lightkube.Client) -> Iterator[str]:
    """The namespace full_batch names: a dry-run create is refused without it, before any
    bound is checked."""
    name = "tenant-bounds"
    kube.create(core_v1.Namespace(metadata={"name": name}))  # type: ignore[arg-type]
    yield name
    kube.delete(core_v1.Namespace, name)


@pytest.mark.parametrize(
    ("file", "make", "path", "keyword", "limit"),
    CRD_BOUNDS,
    ids=[f"{case[0].split('.')[0]}:{case[2]}:{case[3]}" for case in CRD_BOUNDS],
)
def test_every_crd_bound_takes_its_limit_and_refuses_one_more_naming_the_field(
    kube: lightkube.Client, crds_installed: None, bounds_namespace: str, file: str, make: Any,
    path: str, keyword: str, limit: int,
) -> None:  # fmt: skip
    base = make()
    template = current(base, path)
    at = adjusted(path, place(base, path, value_of(path, keyword, limit, template=template)))
    over = adjusted(path, place(base, path, value_of(path, keyword, limit + 1, template=template)))
    taken = dry_run(kube, at)
    if path in ORDERED_BELOW_MAX:
        assert taken is None or "less than or equal" not in taken, taken
    else:
        assert taken is None, f"{path} at {limit}: {taken}"
    refused = dry_run(kube, over)
    assert refused is not None, f"{path} at {limit + 1} was accepted"
    # The apiserver names a map's value by its key: nodeSelector{} shows as nodeSelector.pool.
    shown = re.sub(r"\[\]", "[0]", path).split("{")[0]
    assert shown in refused, refused


@pytest.mark.parametrize(
    ("make", "field", "set_to"),
    [
        (full_tenant, "metadata.name", lambda n: "a" * n),
        (full_batch, "spec.items", None),
    ],
    ids=["tenant name (CEL)", "prompt characters per batch (CEL)"],
)
def test_the_cel_bounds_take_their_limit_and_refuse_one_more(
    kube: lightkube.Client, crds_installed: None, make: Any, field: str, set_to: Any
) -> None:
    def at(extra: int) -> dict[str, Any]:
        obj = make()
        if field == "metadata.name":
            obj["metadata"]["name"] = set_to(tenant.MAX_NAME_LENGTH + extra)
            return obj
        per_item = imagebatch.MAX_PROMPT_CHARACTERS // 100
        obj["spec"]["items"] = [
            {"id": f"i{n}", "prompt": "p" * (per_item + (extra if n == 0 else 0))}
            for n in range(100)
        ]
        return obj

    assert dry_run(kube, at(0)) is None
    refused = dry_run(kube, at(1))
    assert refused is not None
    assert field in refused, refused


# The batch API's body


def api_schema_bounds() -> list[tuple[str, str, int]]:
    schema = schemas.BatchRequest.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[1]])
            if "anyOf" in node:  # Optional[X]: the X
                return resolve(next(n for n in node["anyOf"] if n.get("type") != "null"))
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(n) for n in node]
        return node

    return list(bounds(resolve(schema)))


def metadata_at(path: str, n: int) -> dict[str, str]:
    """The request's metadata with n entries, or one key or value of n characters."""
    if path == "metadata{key}":
        return {"k" * n: "v"}
    if path == "metadata{}":
        return {"k": "v" * n}
    return {f"k{i}": "v" for i in range(n)}


def full_request() -> dict[str, Any]:
    return {
        "items": [{"id": "i0", "prompt": "a gull", "negative_prompt": "fog", "size": "64x64",
                   "seed": 7, "provider": "local"}],
        "defaults": {"size": "64x64", "format": "png", "provider": "local"},
        "webhook": {"url": "http://127.0.0.2/hook", "events": ["succeeded"]},
        "metadata": {"k": "v"},
    }  # fmt: skip


@pytest.fixture(scope="module")
def roomy_tenant(gateway_world_module: GatewayWorld) -> tuple[str, str]:
    return gateway_world_module.ready_tenant(
        "apibounds", quota={"max_images_per_minute": 100_000}, requests_per_minute=6000,
        burst=6000,
    )  # fmt: skip


@pytest.fixture(scope="module")
def gateway_world_module(
    kube: lightkube.Client, local_stack: Any, running_operator: Any, running_gateway: Any
) -> GatewayWorld:
    return GatewayWorld(
        world=World(kube=kube, regions=local_stack.regions), gateway=running_gateway
    )


@pytest.mark.parametrize(("path", "keyword", "limit"), api_schema_bounds(),
                         ids=[f"{p}:{k}" for p, k, _ in api_schema_bounds()])  # fmt: skip
def test_every_api_body_bound_takes_its_limit_and_refuses_one_more_naming_the_field(
    gateway_world_module: GatewayWorld, roomy_tenant: tuple[str, str], path: str,
    keyword: str, limit: int,
) -> None:  # fmt: skip
    _, key = roomy_tenant
    base = full_request()
    if path.startswith("metadata"):
        at, over = ({**base, "metadata": metadata_at(path, n)} for n in (limit, limit + 1))
    else:
        template = current(base, path)
        at = place(base, path, value_of(path, keyword, limit, template=template))
        over = place(base, path, value_of(path, keyword, limit + 1, template=template))
    with gateway_world_module.client(key) as http:
        accepted = http.post("/api/v1/batches", json=at)
        refused = http.post("/api/v1/batches", json=over)
    assert accepted.status_code == 202, accepted.text
    assert refused.status_code == 422, refused.text
    fields = [e["field"] for e in refused.json()["errors"]]
    assert any(f.startswith(re.sub(r"\[\]", ".0", path).split("{")[0]) for f in fields), fields


# Generated CRs, valid or not, on the real apiserver and operator

TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
PROMPT = st.one_of(TEXT, st.text(alphabet='ab <&>"\\夜\t\n', min_size=1, max_size=2100))
ITEM = st.fixed_dictionaries(
    {"id": st.one_of(st.from_regex(imagebatch.ITEM_ID_PATTERN, fullmatch=True), TEXT),
     "prompt": PROMPT},
    optional={
        "negativePrompt": PROMPT,
        "seed": st.integers(min_value=-1, max_value=2**33),
        "size": st.one_of(st.sampled_from(["64x64", "1024x1024", "0x0", "9999x9999"]), TEXT),
        "provider": st.sampled_from(["local", "openai", "Not-A-Label"]),
    },
)  # fmt: skip
BATCH_SPEC = st.fixed_dictionaries(
    {"items": st.lists(ITEM, min_size=0, max_size=6)},
    optional={
        "priority": st.sampled_from(["high", "normal", "low", "urgent"]),
        "cancel": st.booleans(),
        "defaults": st.fixed_dictionaries({}, optional={
            "size": st.sampled_from(["64x64", "12x12", "huge"]),
            "format": st.sampled_from(["png", "jpeg", "gif"])}),
        "webhook": st.fixed_dictionaries({"url": st.one_of(
            st.just("http://127.0.0.2/hook"), TEXT.map(lambda t: "http://" + t))}),
    },
)  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_tenant(kube: lightkube.Client, local_stack: Any, running_operator: Any) -> str:
    world = World(kube=kube, regions=local_stack.regions)
    name = unique_name("fuzz")
    world.create(new_tenant(name, "us-east").quota(max_active_batches=10_000).obj())
    world.wait_reconciled(name, timeout=90)
    return name


def created_or_refusal(kube: lightkube.Client, obj: dict[str, Any]) -> str | None:
    """None when the apiserver took obj, else "code message" of its refusal."""
    try:
        kube.create(codecs.from_dict(obj))
    except lightkube.ApiError as error:
        return f"{error.status.code} {error.status.message}"
    return None


def decided_then_deleted(kube: lightkube.Client, obj: dict[str, Any], namespace: str) -> None:
    """The operator gives the batch a phase; deleting it then finishes (finalizer removed)."""
    name = obj["metadata"]["name"]

    def phase() -> str | None:
        found = kube.get(resources.ImageBatch, name, namespace=namespace).to_dict()
        return (found.get("status") or {}).get("phase")

    waiting.until(phase, timeout=60, what=f"a phase for {name}")
    apiobjects.delete_and_wait(kube, resources.ImageBatch, name, namespace=namespace)


def test_generated_batches_are_decided_and_deleted_whatever_the_apiserver_accepts(
    world: World, fuzz_tenant: str
) -> None:
    namespace = f"tenant-{fuzz_tenant}"

    @FUZZ
    @hypothesis.given(spec=BATCH_SPEC)
    def one(spec: dict[str, Any]) -> None:
        obj = {
            "apiVersion": "imagegen.semantest.io/v1alpha1", "kind": "ImageBatch",
            "metadata": {"name": unique_name("fz"), "namespace": namespace},
            "spec": {"tenant": fuzz_tenant, **spec},
        }  # fmt: skip
        refusal = created_or_refusal(world.kube, obj)
        if refusal is not None:
            assert refusal.startswith("422 "), refusal
            return
        decided_then_deleted(world.kube, obj, namespace)

    one()


TENANT_SPEC = st.fixed_dictionaries(
    {},
    optional={
        "tier": st.sampled_from(["priority", "standard", "gold"]),
        "rateLimit": st.fixed_dictionaries({}, optional={
            "requestsPerMinute": st.integers(-1, 200_000), "burst": st.integers(0, 2_000_000)}),
        "quota": st.fixed_dictionaries({}, optional={
            "maxBatchSize": st.integers(0, 101), "maxActiveBatches": st.integers(0, 20_000),
            "maxImagesPerMinute": st.integers(0, 20_000_000)}),
        "sla": st.fixed_dictionaries({"batchDeadlineSeconds": st.integers(0, 10**12)}),
        "workers": st.fixed_dictionaries({}, optional={
            "pool": st.sampled_from(["dedicated", "shared", "both"]),
            "minReplicas": st.integers(0, 51), "maxReplicas": st.integers(0, 51)}),
        "regions": st.lists(st.sampled_from(["us-east", "eu-west", "mars"]), min_size=0,
                            max_size=3, unique=True),
    },
)  # fmt: skip


def test_generated_tenants_are_reconciled_and_deleted_whatever_the_apiserver_accepts(
    world: World,
) -> None:
    @FUZZ
    @hypothesis.given(spec=TENANT_SPEC)
    def one(spec: dict[str, Any]) -> None:
        name = unique_name("fzt")
        obj = builders.make_tenant(name).namespace(f"tenant-{name}").obj()
        obj["spec"].update(spec)
        refusal = created_or_refusal(world.kube, obj)
        if refusal is not None:
            assert refusal.startswith("422 "), refusal
            return
        world.wait_observed(name, timeout=90)
        apiobjects.delete_and_wait(world.kube, resources.Tenant, name)

    one()
