"""The chart's values.schema.json: committed as generated, and holding the same bounds as
the Tenant CRD and the operator config model, so Helm refuses what they would refuse."""

import json
import pathlib

from imagegen.api import chartschema, crd, operatorconfig, tenant

SCHEMA = pathlib.Path(__file__).resolve().parents[2] / "charts" / "imagegen" / "values.schema.json"
GENERATED = chartschema.values_schema()


def test_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA.read_text() == chartschema.dump(GENERATED), (
        f"{SCHEMA} is stale: run `make chart-schema` and commit the result"
    )


def test_tenant_bounds_are_the_crds() -> None:
    workers = GENERATED["properties"]["tenants"]["additionalProperties"]["properties"]["workers"]
    crd_workers = crd.schema(tenant.Tenant)["properties"]["spec"]["properties"]["workers"]
    for field in ("minReplicas", "maxReplicas"):
        bounds = {key: workers["properties"][field][key] for key in ("minimum", "maximum")}
        assert bounds == {key: crd_workers["properties"][field][key] for key in bounds}
    assert workers["properties"]["maxReplicas"]["maximum"] == 50
    tier = GENERATED["properties"]["tenants"]["additionalProperties"]["properties"]["tier"]
    assert tier["enum"] == ["priority", "standard"]


def test_tenant_spec_refuses_unknown_keys_and_carries_no_kubernetes_extensions() -> None:
    spec = GENERATED["properties"]["tenants"]["additionalProperties"]
    assert spec["additionalProperties"] is False
    assert spec["properties"]["workers"]["additionalProperties"] is False
    assert "x-kubernetes" not in json.dumps(spec)


def test_config_is_the_operator_config_without_what_the_chart_sets() -> None:
    config = GENERATED["properties"]["config"]
    model_fields = {
        field.alias or name for name, field in operatorconfig.OperatorConfig.model_fields.items()
    }
    assert set(config["properties"]) == model_fields - {"regions", "operatorNamespace"}
    assert "required" not in config


def test_every_reference_resolves() -> None:
    text = json.dumps(GENERATED)
    defs = set(GENERATED["$defs"])
    references = {part.split('"')[0] for part in text.split('"$ref": "#/$defs/')[1:]}
    assert references <= defs
