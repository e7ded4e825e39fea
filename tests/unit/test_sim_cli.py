"""`python -m imagegen.sim` takes the worker's Redis options and refuses bad ones before
it connects to anything."""

import pytest

from imagegen.sim import __main__ as sim


def test_a_bad_redis_option_exits_2_naming_its_flag_and_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGEN_REDIS_URL", "rediss://redis.us-east:6380/0")
    code = sim.main(
        [
            "--kubeconfig",
            "/none",
            "--target",
            "shared=worker-shared",
            "--redis-retry-attempts",
            "11",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("imagegen.sim: --redis-retry-attempts (IMAGEGEN_REDIS_RETRY_ATTEMPTS): ")


def test_an_unreadable_ca_file_exits_2_naming_the_field(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGEN_REDIS_CA_FILE", "/nowhere/ca.crt")
    code = sim.main(
        ["--kubeconfig", "/none", "--target", "a=b", "--redis-url", "rediss://r:6380/0"]
    )
    assert code == 2
    assert capsys.readouterr().err.startswith("imagegen.sim: caFile: cannot read /nowhere/ca.crt")
