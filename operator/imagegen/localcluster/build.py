"""Build the control-plane binaries from the Go modules in tests/controlplane, once.

Each Go module is built into a cache folder whose name is a digest of everything that
decides the output (go.mod, go.sum, the packages and the linker flags), so a second build
with the same inputs is a no-op and an upgrade in go.sum builds afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection

logger = logging.getLogger(__name__)

KUBERNETES_VERSION = "v1.37.2"

# Without these the binaries call themselves v0.0.0-master, and kubectl and client
# libraries that negotiate features by server version misbehave.
_KUBERNETES_LDFLAGS = (
    "-s -w"
    f" -X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION}"
    " -X k8s.io/component-base/version.gitMajor=1"
    " -X k8s.io/component-base/version.gitMinor=37"
    " -X k8s.io/component-base/version.gitTreeState=clean"
)

PROMETHEUS_VERSION = "3.16.0"
"""What github.com/prometheus/prometheus v0.316.0 calls itself (its v3.16.0 tag)."""

# metrics-server takes its version from client-go; unset, its logs say v0.0.0-master.
_METRICS_SERVER_LDFLAGS = "-s -w -X k8s.io/client-go/pkg/version.gitVersion=v0.8.0"

ARGOCD_GO_TOOLCHAIN = "go1.27.3"

# Helm reports its version from these; unset, `helm version` says v4.3 "unreleased".
_HELM_LDFLAGS = (
    "-s -w"
    " -X helm.sh/helm/v4/internal/version.version=v4.3.1"
    " -X helm.sh/helm/v4/internal/version.metadata="
    " -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class GoModule:
    """One Go module under tests/controlplane and the commands it builds."""

    directory: str
    """Folder name under tests/controlplane."""
    packages: dict[str, str]
    """Binary name -> Go package path."""
    ldflags: str = "-s -w"
    go_toolchain: str | None = None
    """GOTOOLCHAIN for a module that needs a newer Go than the machine's (the go command
    then takes that toolchain from the Go module proxy, once)."""


MODULES = (
    GoModule(directory="etcd", packages={"etcd": "go.etcd.io/etcd/server/v3"}),
    GoModule(
        directory="kubernetes",
        packages={
            "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
            "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
            "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        },
        ldflags=_KUBERNETES_LDFLAGS,
    ),
    GoModule(directory="kwok", packages={"kwok": "sigs.k8s.io/kwok/cmd/kwok"}),
    # Its own module: next to the Kubernetes 1.37 libraries metrics-server dies at start.
    GoModule(
        directory="metrics-server",
        packages={"metrics-server": "sigs.k8s.io/metrics-server/cmd/metrics-server"},
        ldflags=_METRICS_SERVER_LDFLAGS,
    ),
    # Scrapes the operator and workers of integration runs; promtool tests the alert rules.
    GoModule(
        directory="prometheus",
        packages={
            "prometheus": "github.com/prometheus/prometheus/cmd/prometheus",
            "promtool": "github.com/prometheus/prometheus/cmd/promtool",
        },
        ldflags=f"-s -w -X github.com/prometheus/common/version.Version={PROMETHEUS_VERSION}",
    ),
    # Its own module too: the chart tests drive the real helm CLI, and Helm's Kubernetes
    # libraries need not follow the apiserver's.
    GoModule(
        directory="helm",
        packages={"helm": "helm.sh/helm/v4/cmd/helm"},
        ldflags=_HELM_LDFLAGS,
    ),
    # One binary for every Argo CD component (ARGOCD_BINARY_NAME picks it); Go 1.27.
    GoModule(
        directory="argocd",
        packages={"argocd": "github.com/argoproj/argo-cd/v3/cmd"},
        go_toolchain=ARGOCD_GO_TOOLCHAIN,
    ),
    # Each region's S3-compatible object store in tests and the local stack: an S3
    # gateway onto a folder, with SigV4, presigned URLs and per-object metadata.
    GoModule(
        directory="versitygw",
        packages={"versitygw": "github.com/versity/versitygw/cmd/versitygw"},
    ),
)


class BuildError(RuntimeError):
    """A control-plane binary could not be built; the message carries go's output."""


def default_source_dir() -> pathlib.Path:
    """tests/controlplane of the checkout this package is installed from (editable)."""
    for parent in pathlib.Path(__file__).resolve().parents:
        candidate = parent / "tests" / "controlplane"
        if candidate.is_dir():
            return candidate
    raise BuildError(
        "tests/controlplane not found above the imagegen package; "
        "install imagegen editable from a checkout (pip install -e .) or pass --source"
    )


def default_cache_dir() -> pathlib.Path:
    """$IMAGEGEN_CACHE_DIR, else $XDG_CACHE_HOME/imagegen, else ~/.cache/imagegen."""
    if explicit := os.environ.get("IMAGEGEN_CACHE_DIR"):
        return pathlib.Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(xdg) / "imagegen"


def module_digest(*, module: GoModule, source_dir: pathlib.Path) -> str:
    """A digest of every input that decides the module's binaries."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((source_dir / module.directory / name).read_bytes())
    for binary, package in sorted(module.packages.items()):
        digest.update(f"{binary}={package}\n".encode())
    digest.update(module.ldflags.encode())
    digest.update((module.go_toolchain or "").encode())
    return digest.hexdigest()[:16]


LOCAL_STACK = frozenset(
    {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
        "metrics-server",
        "prometheus",
    }
)
"""What `imagegen demo` and `imagegen dev` start: a fresh machine builds these and not
helm or argocd (minutes of cold build and gigabytes of Go caches the stack never uses)."""


def ensure_built(
    *,
    source_dir: pathlib.Path | None = None,
    cache_dir: pathlib.Path | None = None,
    only: Collection[str] | None = None,
) -> dict[str, pathlib.Path]:
    """Build every control-plane binary that is not cached yet, or only the modules that
    make a binary named in `only`; return name -> path of what was asked for."""
    source_dir = source_dir or default_source_dir()
    cache_dir = cache_dir or default_cache_dir()
    binaries: dict[str, pathlib.Path] = {}
    for module in _wanted(only):
        target = _target(module=module, source_dir=source_dir, cache_dir=cache_dir)
        if not all((target / name).is_file() for name in module.packages):
            _build_module(module=module, module_dir=source_dir / module.directory, target=target)
        binaries.update({name: target / name for name in module.packages})
    return binaries


def cached(
    *, source_dir: pathlib.Path | None = None, cache_dir: pathlib.Path | None = None
) -> dict[str, pathlib.Path]:
    """The binaries already built for the current go.sum files, building nothing."""
    source_dir = source_dir or default_source_dir()
    cache_dir = cache_dir or default_cache_dir()
    found: dict[str, pathlib.Path] = {}
    for module in MODULES:
        target = _target(module=module, source_dir=source_dir, cache_dir=cache_dir)
        found.update({name: target / name for name in module.packages if (target / name).is_file()})
    return found


def _wanted(only: Collection[str] | None) -> list[GoModule]:
    if only is None:
        return list(MODULES)
    unknown = set(only) - {name for module in MODULES for name in module.packages}
    if unknown:
        raise BuildError(f"no Go module builds {', '.join(sorted(unknown))}")
    return [module for module in MODULES if set(module.packages) & set(only)]


def _target(*, module: GoModule, source_dir: pathlib.Path, cache_dir: pathlib.Path) -> pathlib.Path:
    digest = module_digest(module=module, source_dir=source_dir)
    return cache_dir / "bin" / f"{module.directory}-{digest}"


def _build_module(*, module: GoModule, module_dir: pathlib.Path, target: pathlib.Path) -> None:
    go = shutil.which("go")
    if go is None:
        raise BuildError("the go command is not on PATH; install Go >= 1.26")
    logger.info(
        "building %s into %s (cold builds take minutes)", ", ".join(module.packages), target
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build into a sibling folder and rename it in place, so an interrupted build never
    # leaves a half-filled cache entry that a later run would trust.
    staging = pathlib.Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    try:
        command = [go, "build", "-trimpath", "-ldflags", module.ldflags, "-o", f"{staging}/"]
        toolchain = {"GOTOOLCHAIN": module.go_toolchain} if module.go_toolchain else {}
        result = subprocess.run(
            [*command, *module.packages.values()],
            cwd=module_dir,
            env={**os.environ, **toolchain},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BuildError(f"go build in {module_dir} failed:\n{result.stderr[-4000:]}")
        for name, package in module.packages.items():
            built = staging / _go_binary_name(package)
            if built.name != name:
                built.rename(staging / name)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _go_binary_name(package: str) -> str:
    """The file name `go build -o DIR/` gives a main package: its last path element,
    or the one before it when the last is a major-version suffix such as v3."""
    elements = package.split("/")
    if re.fullmatch(r"v[0-9]+", elements[-1]) and len(elements) > 1:
        return elements[-2]
    return elements[-1]
