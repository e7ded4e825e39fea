"""The real helm CLI, built with the control plane, pointed at a test cluster and at a
scratch HELM_*_HOME so that tests never read or write the user's Helm settings."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
from typing import Any

import yaml

from imagegen.localcluster import helmchart

REPO = pathlib.Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "imagegen"
THREE_REGIONS = REPO / "examples" / "helm" / "values-three-regions.yaml"
RELEASE = helmchart.RELEASE
NAMESPACE = helmchart.NAMESPACE


@dataclasses.dataclass(frozen=True, kw_only=True)
class Helm:
    """helm with a home of its own and, for cluster commands, a kubeconfig."""

    binary: pathlib.Path
    home: pathlib.Path
    kubeconfig: pathlib.Path | None = None

    def env(self) -> dict[str, str]:
        homes = {
            f"HELM_{kind}_HOME": str(self.home / kind.lower())
            for kind in ("CACHE", "CONFIG", "DATA")
        }
        return {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), **homes}

    def argv(self, *arguments: str) -> list[str]:
        cluster = [] if self.kubeconfig is None else ["--kubeconfig", str(self.kubeconfig)]
        return [*arguments, *cluster]

    def __call__(self, *arguments: str) -> str:
        """Run helm; fail the test with helm's stderr when it fails."""
        return helmchart.run(helm=self.binary, arguments=self.argv(*arguments), env=self.env())

    def refused(self, *arguments: str) -> str:
        """Run helm expecting it to fail; return its stderr."""
        result = subprocess.run(
            [str(self.binary), *self.argv(*arguments)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env=self.env(),
        )
        assert result.returncode != 0, f"helm {arguments} succeeded:\n{result.stdout[-2000:]}"
        return result.stderr

    def template(self, *arguments: str) -> list[dict[str, Any]]:
        """`helm template` of the chart as objects (release imagegen, imagegen-system)."""
        text = self("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *arguments)
        return [obj for obj in yaml.safe_load_all(text) if obj]


def load_objects(path: pathlib.Path) -> list[dict[str, Any]]:
    """Every object of a YAML stream file."""
    return [obj for obj in yaml.safe_load_all(path.read_text()) if obj]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of that kind and name."""
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def operator_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The operator config file the chart renders into its ConfigMap."""
    config_map = find(objects, "ConfigMap", "imagegen-operator-config")
    document: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return document
