"""The alert rules under promtool, built from Prometheus's own Go module: every alert
fires on the series it is about and stays quiet on healthy ones, and the rules and the
dashboard's queries are valid PromQL. `make test-alerts` runs these alone."""

from __future__ import annotations

import pathlib
import subprocess

import pytest
import yaml

from imagegen.metrics import alerts, dashboard, files
from tests.integration import alertcases

pytestmark = pytest.mark.alerts

REPO = pathlib.Path(__file__).resolve().parents[2]
MONITORING = REPO / "manifests" / "monitoring"


def promtool(binaries: dict[str, pathlib.Path], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binaries["promtool"]), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    for alert in alerts.ALERTS:
        cases = [case for case in alertcases.CASES if case.alert == alert.name]
        assert any(case.fires for case in cases), f"{alert.name}: no case fires it"
        assert any(not case.fires for case in cases), f"{alert.name}: no quiet case"


def test_promtool_unit_tests_of_every_alert_pass(
    binaries: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    tests = tmp_path / "alerts_test.yaml"
    tests.write_text(
        yaml.safe_dump(alertcases.test_file(rules=MONITORING / files.RULES), sort_keys=False)
    )
    result = promtool(binaries, "test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_a_case_that_expects_the_wrong_thing_fails_under_promtool(
    binaries: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    """The harness can fail: a quiet case turned into a firing expectation is caught."""
    document = alertcases.test_file(rules=MONITORING / files.RULES)
    quiet = next(t for t in document["tests"] if not t["alert_rule_test"][0]["exp_alerts"])
    quiet["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {"severity": "page"}}]
    document["tests"] = [quiet]
    tests = tmp_path / "wrong_test.yaml"
    tests.write_text(yaml.safe_dump(document, sort_keys=False))
    assert promtool(binaries, "test", "rules", str(tests)).returncode != 0


@pytest.mark.parametrize("name", [files.RULES, files.PROMETHEUS_RULE])
def test_promtool_check_rules_is_clean(
    binaries: dict[str, pathlib.Path], tmp_path: pathlib.Path, name: str
) -> None:
    path = MONITORING / name
    if name == files.PROMETHEUS_RULE:
        # promtool reads plain rule files: the PrometheusRule's spec is one.
        path = tmp_path / "from-prometheusrule.yaml"
        path.write_text(yaml.safe_dump(yaml.safe_load((MONITORING / name).read_text())["spec"]))
    result = promtool(binaries, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts.ALERTS)} rules found" in result.stdout


def test_every_dashboard_query_parses_as_promql(
    binaries: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    """promtool checks a recording rule per dashboard query, with the variables set."""
    rules = [
        {"record": f"dashboard:query{number}", "expr": substituted(expr)}
        for number, expr in enumerate(queries())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool(binaries, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def queries() -> list[str]:
    return [expr for panel in dashboard.PANELS for _, expr in panel.queries]


def substituted(expr: str, *, tenant: str = ".*", region: str = ".*") -> str:
    return expr.replace("$tenant", tenant).replace("$region", region)
