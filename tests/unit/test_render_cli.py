"""`imagegen render`: what the operator would apply, printed for review."""

import pathlib
import re

import pytest
import yaml

from imagegen import cli
from imagegen.api import operatorconfig, tenant
from imagegen.render import labels, output, pool
from tests import builders

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
METAPHYSICAL = EXAMPLES / "tenant-metaphysical.yaml"
ACME = EXAMPLES / "tenant-acme.yaml"


def render(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["render", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_tenant(path: pathlib.Path, document: object) -> pathlib.Path:
    path.write_text(yaml.safe_dump(document))
    return path


# Output


def test_one_region_prints_exactly_what_the_operator_renders(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = render(capsys, str(METAPHYSICAL), "--region", "us-east")

    obj = tenant.Tenant.model_validate(yaml.safe_load(METAPHYSICAL.read_text()))
    expected = pool.tenant_pool(tenant=obj, region="us-east", config=operatorconfig.local_default())
    assert (code, err) == (0, "")
    assert out == output.to_yaml(expected)


def test_all_regions_print_a_deployment_for_each_region_of_the_tenant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = render(capsys, str(METAPHYSICAL), "--region", "all")

    documents = list(yaml.safe_load_all(out))
    deployments = [document for document in documents if document["kind"] == "Deployment"]
    assert code == 0
    assert [d["metadata"]["labels"][labels.REGION] for d in deployments] == [
        "us-east",
        "eu-west",
        "asia-pacific",
    ]
    assert [line for line in out.splitlines() if line.startswith("# region:")] == [
        "# region: us-east",
        "# region: eu-west",
        "# region: asia-pacific",
    ]


def test_a_tenant_file_without_uid_renders_without_the_uid_label(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = render(capsys, str(METAPHYSICAL), "--region", "us-east")

    for document in yaml.safe_load_all(out):
        assert labels.TENANT_UID not in document["metadata"]["labels"]
    assert "tenant-uid" not in out


def test_a_shared_tenant_prints_the_shared_pool_that_serves_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = render(capsys, str(ACME), "--region", "eu-west")

    names = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out)]
    assert code == 0
    assert names == [
        ("Namespace", "imagegen-workers"),
        ("ServiceAccount", "worker-shared"),
        ("Deployment", "worker-shared"),
        ("HorizontalPodAutoscaler", "worker-shared"),
        ("PodDisruptionBudget", "worker-shared"),
    ]


def test_a_config_file_replaces_the_local_default(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "operator-config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "regions": [
                    {
                        "name": "moon",
                        "inCluster": True,
                        "redis": {"url": "redis://redis.moon:6379/0"},
                    }
                ],
                "workers": {"namespace": "workers-on-the-moon"},
            }
        )
    )
    tenant_file = write_tenant(
        tmp_path / "tenant.yaml", builders.make_tenant("acme").regions("moon").obj()
    )

    code, out, _ = render(capsys, str(tenant_file), "--region", "moon", "--config", str(config))

    deployment = next(d for d in yaml.safe_load_all(out) if d["kind"] == "Deployment")
    assert code == 0
    assert deployment["metadata"]["namespace"] == "workers-on-the-moon"
    assert {"name": "IMAGEGEN_REDIS_URL", "value": "redis://redis.moon:6379/0"} in deployment[
        "spec"
    ]["template"]["spec"]["containers"][0]["env"]


# Bad input


def test_an_invalid_tenant_file_is_refused_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    tenant_file = write_tenant(
        tmp_path / "tenant.yaml", builders.make_tenant("acme").workers(min_replicas=0).obj()
    )

    code, out, err = render(capsys, str(tenant_file), "--region", "us-east")

    assert (code, out) == (2, "")
    assert err.startswith(f"{tenant_file}: spec.workers.minReplicas: ")


def test_a_tenant_file_that_is_not_yaml_is_refused_naming_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    tenant_file = tmp_path / "tenant.yaml"
    tenant_file.write_text("spec: [unclosed\n")

    code, out, err = render(capsys, str(tenant_file), "--region", "us-east")

    assert (code, out) == (2, "")
    assert err.startswith(f"{tenant_file}: ")


def test_a_missing_tenant_file_is_refused_naming_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    code, _, err = render(capsys, str(tmp_path / "absent.yaml"), "--region", "us-east")

    assert code == 2
    assert err == f"{tmp_path / 'absent.yaml'}: No such file or directory\n"


def test_an_unknown_region_is_refused_naming_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = render(capsys, str(METAPHYSICAL), "--region", "x")

    assert (code, out) == (2, "")
    assert "unknown region 'x'; the operator config knows: us-east, eu-west, asia-pacific" in err


def test_a_region_the_tenant_does_not_list_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = render(capsys, str(ACME), "--region", "asia-pacific")

    assert (code, out) == (2, "")
    assert "does not run in region 'asia-pacific'; its spec.regions: eu-west, us-east" in err


# Worker pod profiles (issue 19)

GPU_PARTNER = EXAMPLES / "tenant-gpu-partner.yaml"
GPU_CONFIG = EXAMPLES / "operator" / "gpu-profiles.yaml"


def test_a_named_gpu_profile_shows_in_the_rendered_pod(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = render(
        capsys, str(GPU_PARTNER), "--region", "us-east", "--config", str(GPU_CONFIG)
    )

    (deployment,) = [d for d in yaml.safe_load_all(out) if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    assert (code, err) == (0, "")
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["nodeSelector"] == {"imagegen.semantest.io/node-pool": "premium-gpu"}
    assert spec["priorityClassName"] == "imagegen-premium"


def test_a_profile_the_config_lacks_is_an_error_naming_the_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = render(capsys, str(GPU_PARTNER), "--region", "us-east")

    assert (code, out) == (2, "")
    assert "spec.workers.profile: unknown profile 'premium-gpu'" in err


GPU_RENDER_COMMAND = (
    "# imagegen render examples/tenant-gpu-partner.yaml --region us-east "
    "--config examples/operator/gpu-profiles.yaml"
)
DOCS = (EXAMPLES.parent / "README.md", EXAMPLES.parent / "docs" / "install.md")


def quoted_outputs(path: pathlib.Path, *, command: str) -> list[object]:
    """Each ```yaml block of `path` whose first line is `command`, parsed."""
    blocks = re.findall(r"^```yaml\n(.*?)^```$", path.read_text(), re.M | re.S)
    return [yaml.safe_load(block) for block in blocks if block.splitlines()[0] == command]


def is_excerpt(part: object, whole: object) -> bool:
    """True when `part` is `whole` with some mapping keys left out (lists keep every
    element, in order)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            key in whole and is_excerpt(value, whole[key]) for key, value in part.items()
        )
    if isinstance(part, list):
        return (
            isinstance(whole, list)
            and len(part) == len(whole)
            and all(is_excerpt(p, w) for p, w in zip(part, whole, strict=True))
        )
    return part == whole


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_the_docs_quote_what_render_prints_for_the_gpu_partner(
    capsys: pytest.CaptureFixture[str], path: pathlib.Path
) -> None:
    code, out, _ = render(
        capsys, str(GPU_PARTNER), "--region", "us-east", "--config", str(GPU_CONFIG)
    )
    (deployment,) = [d for d in yaml.safe_load_all(out) if d["kind"] == "Deployment"]

    (quoted,) = quoted_outputs(path, command=GPU_RENDER_COMMAND)

    assert code == 0
    assert is_excerpt(quoted, deployment), f"{path.name}: the quoted output is not render's"
