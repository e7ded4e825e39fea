"""The Argo CD health checks in gitops/health, run as Lua (lupa) the way Argo CD runs them:
a global `obj` holding the resource, the script's return value the health."""

import pathlib
from typing import Any

import lupa
import pytest
import yaml

from tests import builders

GITOPS = pathlib.Path(__file__).resolve().parents[2] / "gitops"


def health(script: str, obj: dict[str, Any]) -> dict[str, str]:
    """Run a health script on obj; return {status, message}."""
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals()["obj"] = _to_lua(runtime, obj)
    source = (GITOPS / "health" / script).read_text()
    result = runtime.execute(source)
    return {key: result[key] for key in ("status", "message") if result[key] is not None}


def _to_lua(runtime: lupa.LuaRuntime, value: Any) -> Any:
    # Argo CD hands the script the object as nested tables; lists are 1-based tables.
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def condition(type_: str, status: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": type_, "message": message}


def tenant(*, generation: int = 1, observed: int | None = 1, conditions: Any = ()) -> Any:
    obj = builders.make_tenant("acme").obj()
    obj["metadata"]["generation"] = generation
    if observed is not None:
        obj["status"] = {"observedGeneration": observed, "conditions": list(conditions)}
    return obj


def test_a_new_tenant_is_progressing_until_the_operator_writes_status() -> None:
    assert health("tenant.lua", tenant(observed=None))["status"] == "Progressing"


def test_a_tenant_whose_spec_changed_is_progressing_until_observed() -> None:
    ready = [condition("Ready", "True")]
    assert health("tenant.lua", tenant(generation=2, observed=1, conditions=ready)) == {
        "status": "Progressing",
        "message": "The operator has not reconciled the current spec yet",
    }


def test_a_ready_tenant_is_healthy() -> None:
    ready = [condition("Ready", "True", "us-east 3/3"), condition("Degraded", "False")]
    assert health("tenant.lua", tenant(conditions=ready)) == {
        "status": "Healthy",
        "message": "us-east 3/3",
    }


def test_a_degraded_tenant_is_degraded_whatever_ready_says() -> None:
    conditions = [condition("Ready", "False"), condition("Degraded", "True", "eu-west down")]
    assert health("tenant.lua", tenant(conditions=conditions)) == {
        "status": "Degraded",
        "message": "eu-west down",
    }


def test_a_tenant_not_ready_yet_is_progressing_with_the_operators_message() -> None:
    conditions = [condition("Ready", "False", "pools applying"), condition("Degraded", "False")]
    assert health("tenant.lua", tenant(conditions=conditions)) == {
        "status": "Progressing",
        "message": "pools applying",
    }


@pytest.mark.parametrize(
    ("phase", "status"),
    [
        (None, "Progressing"),
        ("Pending", "Progressing"),
        ("Queued", "Progressing"),
        ("Running", "Progressing"),
        ("Succeeded", "Healthy"),
        ("PartiallySucceeded", "Degraded"),
        ("Failed", "Degraded"),
        ("Rejected", "Degraded"),
        ("Cancelled", "Suspended"),
    ],
)
def test_a_batch_health_follows_its_phase(phase: str | None, status: str) -> None:
    batch = builders.make_batch().obj()
    if phase is not None:
        batch["status"] = {"phase": phase, "progress": "3/5", "message": "why"}
    assert health("imagebatch.lua", batch)["status"] == status


def test_a_rejected_batch_says_why() -> None:
    batch = builders.make_batch().obj()
    batch["status"] = {"phase": "Rejected", "message": "spec.items: 120 items > quota 100"}
    assert health("imagebatch.lua", batch)["message"] == "spec.items: 120 items > quota 100"


def test_argocd_cm_snippet_carries_exactly_the_scripts() -> None:
    snippet = yaml.safe_load((GITOPS / "argocd-cm-health.yaml").read_text())
    prefix = "resource.customizations.health.imagegen.semantest.io_"
    assert snippet["data"] == {
        f"{prefix}Tenant": (GITOPS / "health" / "tenant.lua").read_text(),
        f"{prefix}ImageBatch": (GITOPS / "health" / "imagebatch.lua").read_text(),
    }
