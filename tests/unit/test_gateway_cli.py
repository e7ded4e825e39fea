"""`imagegen gateway` refuses bad settings before it starts, naming the file and field."""

import pathlib

import pytest

from imagegen import cli
from imagegen.gateway import server, settings


def test_bad_settings_are_refused_naming_each_field(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("port: seventy\nmax_body_bytes: 10\ncolour: blue\n")
    assert cli.main(["gateway", "--config", str(config)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["port", "max_body_bytes", "colour"]
    assert all(line.startswith(f"{config}: ") for line in lines)


def test_a_missing_settings_file_is_named(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert cli.main(["gateway", "--config", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"{missing}: No such file or directory"


def test_openapi_writes_the_document(tmp_path: pathlib.Path) -> None:
    output = tmp_path / "openapi.json"
    assert cli.main(["openapi", "--output", str(output)]) == 0
    assert '"/api/v1/batch/generate"' in output.read_text()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[settings.GatewaySettings]:
    """The settings each `imagegen gateway` would serve with; nothing is started."""
    for name in ("IMAGEGEN_GATEWAY_REDIS_URL", "IMAGEGEN_GATEWAY_REDIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    runs: list[settings.GatewaySettings] = []
    monkeypatch.setattr(server, "serve", runs.append)
    return runs


def test_the_management_redis_comes_from_the_settings_file(
    tmp_path: pathlib.Path, served: list[settings.GatewaySettings]
) -> None:
    (tmp_path / "ca.crt").write_text("PEM")
    (tmp_path / "password").write_text("pw\n")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "redis:\n"
        "  url: rediss+cluster://r0:6380,r1:6380\n"
        f"  caFile: {tmp_path / 'ca.crt'}\n"
        f"  passwordFile: {tmp_path / 'password'}\n"
        "  retry: {attempts: 5}\n"
    )
    assert cli.main(["gateway", "--config", str(config)]) == 0
    [found] = served
    assert found.redis.address.cluster
    assert (found.redis.command_timeout_seconds, found.redis.retry.attempts) == (2.0, 5)
    assert found.redis.ca_file == tmp_path / "ca.crt"


def test_a_url_held_whole_in_a_secret_gives_its_password_to_the_settings(
    tmp_path: pathlib.Path,
    served: list[settings.GatewaySettings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGEGEN_GATEWAY_REDIS_URL", "redis://:s%40cret@redis.mgmt:6379/2")
    config = tmp_path / "gateway.yaml"
    config.write_text("redis: {commandTimeoutSeconds: 1}\n")
    assert cli.main(["gateway", "--config", str(config)]) == 0
    [found] = served
    assert (found.redis.url, found.redis_password) == ("redis://redis.mgmt:6379/2", "s@cret")
    assert found.redis.command_timeout_seconds == 1
    assert "s@cret" not in repr(found)


def test_an_unreadable_redis_ca_file_is_refused_naming_the_field(
    tmp_path: pathlib.Path,
    served: list[settings.GatewaySettings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(f"redis: {{url: 'rediss://r:6380/0', caFile: {tmp_path / 'nope'}}}\n")
    assert cli.main(["gateway", "--config", str(config)]) == 2
    assert served == []
    assert capsys.readouterr().err.startswith(f"{config}: redis.caFile: cannot read ")
