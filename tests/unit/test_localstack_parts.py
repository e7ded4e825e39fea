"""What the local stack builds and what the demo sends: only the control-plane parts it
starts, and the example batch as the API request a partner would make of it."""

import pathlib

import pytest

from imagegen.localcluster import build, partner

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def test_the_local_stack_builds_neither_helm_nor_argocd() -> None:
    wanted = {module.directory for module in build._wanted(build.LOCAL_STACK)}
    assert wanted == {"etcd", "kubernetes", "kwok", "metrics-server", "prometheus"}
    made = {name for module in build._wanted(build.LOCAL_STACK) for name in module.packages}
    assert made >= build.LOCAL_STACK
    assert not {"helm", "argocd"} & made


def test_asking_for_an_unknown_binary_names_it() -> None:
    with pytest.raises(build.BuildError, match="kubelet"):
        build._wanted({"kubelet", "etcd"})


def test_the_demo_batch_becomes_the_api_request_of_the_same_items() -> None:
    tenant, body = partner.request_from_manifest(EXAMPLES / "imagebatch-100.yaml")
    assert tenant == "metaphysical"
    assert len(body["items"]) == 100
    assert body["defaults"] == {"size": "512x512", "provider": "local", "format": "png"}
    assert body["items"][0] == {"id": "img-000", "prompt": "a lighthouse at dawn", "seed": 0}


def test_the_key_command_names_the_secret_and_decodes_it() -> None:
    command = partner.key_command(
        kubeconfig=pathlib.Path("/k"), tenant="acme", namespace="tenant-acme"
    )
    assert command == (
        "kubectl --kubeconfig /k get secret acme-api-key -n tenant-acme"
        " -o jsonpath='{.data.api-key}' | base64 -d"
    )
