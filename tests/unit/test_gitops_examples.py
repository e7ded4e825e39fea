"""The GitOps examples are valid objects, ordered by sync waves: Tenants before batches;
the ApplicationSet sends each environment to a management cluster of its own, and the
single Application is what it makes for staging."""

import pathlib
from typing import Any

import pytest
import yaml

from imagegen.api import imagebatch, tenant

GITOPS = pathlib.Path(__file__).resolve().parents[2] / "gitops"
ENVIRONMENTS = GITOPS / "environments"
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


def applicationset() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(
        (GITOPS / "applications" / "applicationset.yaml").read_text()
    )
    return found


def generated(environment: str) -> dict[str, Any]:
    """The Application the ApplicationSet makes for one folder of gitops/environments: its
    template with the git directory generator's two parameters it uses filled in."""
    appset = applicationset()
    (generator,) = appset["spec"]["generators"]
    assert generator["git"]["directories"] == [{"path": "gitops/environments/*"}]
    text = yaml.safe_dump(appset["spec"]["template"])
    text = text.replace("{{.path.basename}}", environment)
    text = text.replace("{{.path.path}}", f"gitops/environments/{environment}")
    assert "{{" not in text, text
    app: dict[str, Any] = yaml.safe_load(text)
    return app


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_each_environment_goes_to_its_own_management_cluster(environment: str) -> None:
    spec = generated(environment)["spec"]
    assert spec["destination"] == {"name": f"management-{environment}"}
    assert spec["source"]["path"] == f"gitops/environments/{environment}"
    assert spec["syncPolicy"] == {
        "automated": {"prune": True, "selfHeal": True, "allowEmpty": True},
        "syncOptions": ["ServerSideApply=true"],
    }


def test_the_single_application_is_what_the_applicationset_makes_for_staging() -> None:
    app = yaml.safe_load((GITOPS / "applications" / "imagegen-staging.yaml").read_text())
    made = generated("staging")
    assert app["metadata"]["name"] == made["metadata"]["name"] == "imagegen-tenants-staging"
    assert app["spec"] == made["spec"]


def test_deleting_either_leaves_the_tenants_in_place() -> None:
    # Argo CD's resources finalizer would make deleting an app delete what it synced;
    # the ApplicationSet adds it to every app it makes unless told not to.
    assert applicationset()["spec"]["syncPolicy"] == {"preserveResourcesOnDeletion": True}
    assert "finalizers" not in generated("staging")["metadata"]
    app = yaml.safe_load((GITOPS / "applications" / "imagegen-staging.yaml").read_text())
    assert "finalizers" not in app["metadata"]
