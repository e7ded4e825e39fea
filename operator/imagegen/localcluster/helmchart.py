"""The plain manifests in manifests/, rendered from charts/imagegen by the Helm binary that
the control-plane build makes, so that the chart is their single source."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
from collections.abc import Mapping, Sequence

RELEASE = "imagegen"
NAMESPACE = "imagegen-system"
HEADER = "# Rendered by `make manifests` from charts/imagegen; do not edit.\n"
_TIMEOUT_SECONDS = 120


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rendering:
    """One file of manifests/ and the `helm template` arguments that make it."""

    path: str
    """Path under manifests/."""
    arguments: tuple[str, ...]
    """What follows `helm template RELEASE CHART --namespace NAMESPACE`."""


RENDERINGS = (
    # Everything of the management cluster with the chart's defaults, CRDs first.
    Rendering(path="imagegen.yaml", arguments=("--include-crds", "--set", "createNamespace=true")),
    # The operator's identity and roles alone, as the tests and the local stack apply them.
    Rendering(
        path="rbac/management.yaml",
        arguments=(
            "--set",
            "createNamespace=true",
            "--show-only",
            "templates/namespace.yaml",
            "--show-only",
            "templates/operator-serviceaccount.yaml",
            "--show-only",
            "templates/operator-rbac.yaml",
        ),
    ),
    # The gateway's identity and roles alone, as the tests and benchmarks apply them.
    Rendering(
        path="rbac/gateway.yaml",
        arguments=("--show-only", "templates/gateway-rbac.yaml"),
    ),
    # A regional cluster: the workers namespace and the operator's regional roles.
    Rendering(path="rbac/region.yaml", arguments=("--set", "mode=region,createNamespace=true")),
)

KUSTOMIZATION = (
    "# Rendered by `make manifests`; do not edit. `kubectl apply -k manifests/` installs the\n"
    "# management cluster as the chart's defaults do; patch it with an overlay of your own.\n"
    "apiVersion: kustomize.config.k8s.io/v1beta1\n"
    "kind: Kustomization\n"
    "resources:\n"
    "  - imagegen.yaml\n"
)


class HelmError(RuntimeError):
    """helm failed; the message carries what it printed."""


def run(
    *,
    helm: pathlib.Path,
    arguments: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout: float = _TIMEOUT_SECONDS,
) -> str:
    """Run helm with arguments and return what it printed; HelmError when it fails.

    env replaces the environment (tests point HELM_*_HOME at a scratch folder)."""
    result = subprocess.run(
        [str(helm), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=None if env is None else dict(env),
    )
    if result.returncode != 0:
        raise HelmError(f"helm {' '.join(arguments)} failed:\n{result.stderr.strip()}")
    return result.stdout


def render_manifests(*, helm: pathlib.Path, chart: pathlib.Path) -> dict[str, str]:
    """Every file of manifests/ by its path under manifests/, as `make manifests` writes it."""
    template = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
    rendered = {
        rendering.path: HEADER + run(helm=helm, arguments=[*template, *rendering.arguments])
        for rendering in RENDERINGS
    }
    rendered["kustomization.yaml"] = KUSTOMIZATION
    return rendered


def write_manifests(
    *, helm: pathlib.Path, chart: pathlib.Path, output_dir: pathlib.Path
) -> list[pathlib.Path]:
    """Render manifests/ into output_dir; return the files written."""
    written = []
    for relative, text in render_manifests(helm=helm, chart=chart).items():
        path = output_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
