"""`imagegen gateway` refuses bad settings before it starts, naming the file and field."""

import pathlib

import pytest

from imagegen import cli


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
