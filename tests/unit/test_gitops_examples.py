"""The GitOps examples are valid objects, ordered by sync waves: Tenants before batches."""

import pathlib

import pytest
import yaml

from imagegen.api import imagebatch, tenant

ENVIRONMENTS = pathlib.Path(__file__).resolve().parents[2] / "gitops" / "environments"
FILES = sorted(ENVIRONMENTS.glob("*/*.yaml"))
WAVE = "argocd.argoproj.io/sync-wave"


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_every_object_is_valid_and_in_its_wave(path: pathlib.Path) -> None:
    for obj in yaml.safe_load_all(path.read_text()):
        if obj["kind"] == "Tenant":
            tenant.Tenant.model_validate(obj)
            assert obj["metadata"]["annotations"][WAVE] == "1"
        else:
            imagebatch.ImageBatch.model_validate(obj)
            assert obj["metadata"]["annotations"][WAVE] == "2"


def test_every_environment_has_its_tenants() -> None:
    assert sorted(p.name for p in ENVIRONMENTS.iterdir()) == ["production", "staging"]
