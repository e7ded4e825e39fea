"""kwok's stage and metrics configuration, read from the kwok Go module in the module cache.

The files are never copied into our repository: they belong to the kwok version that
tests/controlplane/kwok/go.mod pins, so the binary and its configuration move together.
They are found the way Go finds them (`go list -m -f {{.Dir}}`), and the kustomizations kwok
ships are followed to the YAML files they list, since `kwok --config` takes files.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import yaml

from imagegen.localcluster import build

KWOK_MODULE = "sigs.k8s.io/kwok"

# kwok's own groupings, as kustomizations inside the module (v0.8.0):
# - stage/node/fast: a new Node turns Ready with the allocatable it was created with;
# - stage/node/heartbeat-with-lease: keeps it Ready, given --node-lease-duration-seconds;
# - stage/pod/fast: a scheduled pod turns Running and Ready at once, and goes on delete;
# - metrics/usage: a pod's CPU and memory are its kwok.x-k8s.io/usage-* annotations, and
#   (through metrics/resource) served as a kubelet's /metrics/resource for metrics-server.
KUSTOMIZATIONS = (
    "kustomize/stage/node/fast",
    "kustomize/stage/node/heartbeat-with-lease",
    "kustomize/stage/pod/fast",
    "kustomize/metrics/usage",
)


def config_files() -> list[pathlib.Path]:
    """The stage and metrics YAML files to pass to `kwok --config`, in kwok's module dir."""
    module_dir = kwok_module_dir()
    files: list[pathlib.Path] = []
    for kustomization in KUSTOMIZATIONS:
        for path in _kustomization_files(module_dir / kustomization):
            if path not in files:
                files.append(path)
    return files


def kwok_module_dir() -> pathlib.Path:
    """The kwok module's folder in the Go module cache, as tests/controlplane/kwok pins it."""
    go = shutil.which("go")
    if go is None:
        raise build.BuildError("the go command is not on PATH; install Go >= 1.26")
    module_dir = build.default_source_dir() / "kwok"
    result = subprocess.run(
        [go, "list", "-m", "-f", "{{.Dir}}", KWOK_MODULE],
        cwd=module_dir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = result.stdout.strip()
    # An empty Dir means the module is not in the cache: building kwok downloads it, but
    # a cached kwok binary outlives a cleaned module cache.
    if result.returncode != 0 or not found:
        raise build.BuildError(
            f"{KWOK_MODULE} is not in the Go module cache; `go mod download` in {module_dir}"
            f" fetches it. {result.stderr.strip()}"
        )
    return pathlib.Path(found)


def _kustomization_files(directory: pathlib.Path) -> list[pathlib.Path]:
    """The YAML files a kustomization lists, following resources that are folders."""
    document = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files: list[pathlib.Path] = []
    for resource in document.get("resources", []):
        path = (directory / resource).resolve()
        files.extend(_kustomization_files(path) if path.is_dir() else [path])
    return files
