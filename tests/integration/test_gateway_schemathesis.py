"""Property-based requests generated from the committed OpenAPI document, sent to the real
gateway with a valid key: no answer is a server error, and every answer (status code,
content type, headers, body) is one the document describes."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import hypothesis
import lightkube
import pytest
import schemathesis
from schemathesis import checks

from imagegen.localcluster import cluster
from tests.integration import gatewayproc, operatorproc
from tests.integration.gatewayworld import GatewayWorld
from tests.integration.tenantworld import World

DOCUMENT = pathlib.Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
schema = schemathesis.openapi.from_path(DOCUMENT)

# Validity of the generated data is not the point (a schema-valid body may still be
# refused, e.g. a webhook to an address that does not resolve); answers are.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(
    kube: lightkube.Client,
    regions: dict[str, cluster.LocalCluster],
    running_operator: operatorproc.OperatorProcess,
    running_gateway: gatewayproc.GatewayProcess,
) -> Iterator[tuple[str, str]]:
    """The gateway's URL and the key of a tenant with room for every generated request."""
    gw = GatewayWorld(world=World(kube=kube, regions=regions), gateway=running_gateway)
    _, key = gw.ready_tenant("fuzz", requests_per_minute=100_000, burst=100_000)
    yield running_gateway.url, key
    assert "Traceback" not in running_gateway.log(), running_gateway.log()[-4000:]


@schema.parametrize()
@hypothesis.settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_every_answer_is_documented_and_none_is_a_server_error(
    case: schemathesis.Case, fuzzed: tuple[str, str]
) -> None:
    url, key = fuzzed
    case.call_and_validate(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS, timeout=30
    )
