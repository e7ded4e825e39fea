"""The operator's configuration file: clear errors naming the field, paths made absolute."""

import pathlib

import pydantic
import pytest

from imagegen import cli
from imagegen.api import operatorconfig


def write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(text)
    return path


def test_relative_kubeconfig_paths_are_relative_to_the_file(tmp_path: pathlib.Path) -> None:
    config = operatorconfig.load(
        write(
            tmp_path / "config.yaml",
            "regions:\n- {name: us-east, kubeconfig: k/us-east, redis: {url: 'redis://r:6379/0'}}\n",
        )
    )
    assert config.regions[0].kubeconfig == tmp_path / "k" / "us-east"


def test_a_region_needs_exactly_one_way_in() -> None:
    with pytest.raises(pydantic.ValidationError, match="exactly one of kubeconfig"):
        operatorconfig.OperatorConfig.model_validate(
            {"regions": [{"name": "us-east", "inCluster": True, "kubeconfig": "k",
                          "redis": {"url": "redis://r:6379/0"}}]}
        )  # fmt: skip


def test_region_names_are_unique() -> None:
    region = {"name": "us-east", "inCluster": True, "redis": {"url": "redis://r:6379/0"}}
    with pytest.raises(pydantic.ValidationError, match="repeated: us-east"):
        operatorconfig.OperatorConfig.model_validate({"regions": [region, region]})


def test_redis_credentials_never_go_in_the_url() -> None:
    with pytest.raises(pydantic.ValidationError):
        operatorconfig.RegionRedis.model_validate({"url": "redis://user:secret@r:6379/0"})


def test_operator_refuses_a_bad_config_naming_the_field(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "bad.yaml", "regions:\n- {name: us-east, redis: {url: 'http://x'}}\n")
    assert cli.main(["operator", "--config", str(path)]) == 2
    assert f"{path}: regions.0.redis.url:" in capsys.readouterr().err
