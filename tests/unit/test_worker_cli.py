"""`imagegen worker`: flags, their IMAGEGEN_* defaults, and settings checked before start."""

import asyncio
import pathlib
import re

import pytest

from imagegen import cli, redisconn
from imagegen.api import redisconfig
from imagegen.worker import loop

ENV = (
    "IMAGEGEN_REGION",
    "IMAGEGEN_TENANT",
    *(redisconfig.variable(option) for option in redisconfig.OPTIONS),
    "IMAGEGEN_REDIS_PASSWORD",
    "IMAGEGEN_PROVIDERS",
    "IMAGEGEN_CONCURRENCY",
    "IMAGEGEN_PORT",
)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[loop.WorkerSettings]:
    """The settings each `imagegen worker` would run with; nothing is started."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    runs: list[loop.WorkerSettings] = []

    async def record(*, settings: loop.WorkerSettings, stop: asyncio.Event) -> None:
        runs.append(settings)

    monkeypatch.setattr(loop, "run", record)
    return runs


def test_flags_become_the_workers_settings(started: list[loop.WorkerSettings]) -> None:
    code = cli.main(
        [
            "worker", "--region", "us-east", "--tenant", "acme",
            "--redis-url", "redis://redis:6379/1", "--concurrency", "8",
            "--storage-dir", "/data", "--providers", "openai, local",
            "--simulated-cost-seconds", "0.3", "--lease-seconds", "2", "--max-attempts", "5",
            "--grace-seconds", "0", "--port", "0", "--openai-base-url", "http://fake/v1",
        ]
    )  # fmt: skip

    assert code == 0
    [settings] = started
    assert (settings.region, settings.pool, settings.redis.url) == (
        "us-east",
        "dedicated-acme",
        "redis://redis:6379/1",
    )
    assert (settings.concurrency, settings.lease_seconds, settings.max_attempts) == (8, 2.0, 5)
    assert (settings.grace_seconds, settings.port) == (0.0, 0)
    assert settings.store.url == "file:///data"
    assert settings.providers == ("openai", "local")
    assert settings.provider_settings.local.simulated_cost_seconds == 0.3
    assert settings.provider_settings.openai.base_url == "http://fake/v1"


def test_the_deployments_variables_are_the_defaults(
    started: list[loop.WorkerSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGEN_REGION", "eu-west")
    monkeypatch.setenv("IMAGEGEN_REDIS_URL", "redis://redis.eu-west:6379/0")
    monkeypatch.setenv("IMAGEGEN_REDIS_PASSWORD", "s3cret")
    monkeypatch.setenv("IMAGEGEN_PROVIDERS", "local")
    monkeypatch.setenv("IMAGEGEN_CONCURRENCY", "6")

    assert cli.main(["worker", "--pool", "shared"]) == 0

    [settings] = started
    assert (settings.region, settings.pool, settings.concurrency) == ("eu-west", "shared", 6)
    assert settings.redis.url == "redis://redis.eu-west:6379/0"
    assert settings.redis_credentials.password == "s3cret"
    assert "s3cret" not in repr(settings)


def test_every_redis_setting_comes_from_its_flag_or_variable(
    started: list[loop.WorkerSettings], monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "ca.crt").write_text("PEM")
    monkeypatch.setenv("IMAGEGEN_REDIS_URL", "rediss+cluster://a:6380,b:6380")
    monkeypatch.setenv("IMAGEGEN_REDIS_CA_FILE", str(tmp_path / "ca.crt"))
    monkeypatch.setenv("IMAGEGEN_REDIS_COMMAND_TIMEOUT_SECONDS", "7")
    monkeypatch.setenv("IMAGEGEN_REDIS_RETRY_ATTEMPTS", "5")

    code = cli.main(
        ["worker", "--region", "r", "--pool", "shared", "--redis-connect-timeout-seconds", "1.5"]
    )

    assert code == 0
    [settings] = started
    assert settings.redis == redisconfig.RedisConnection(
        url="rediss+cluster://a:6380,b:6380",
        ca_file=tmp_path / "ca.crt",
        connect_timeout_seconds=1.5,
        command_timeout_seconds=7,
        retry=redisconfig.Retry(attempts=5),
    )
    assert settings.redis_credentials == redisconn.Credentials(ca_pem="PEM")


@pytest.mark.parametrize(
    "args",
    [
        ["--region", "r"],
        ["--region", "r", "--tenant", "acme", "--pool", "shared"],
        ["--region", "r", "--pool", "private"],
        ["--tenant", "acme"],
        ["--region", "r", "--tenant", "acme", "--concurrency", "0"],
        ["--region", "r", "--tenant", "acme", "--lease-seconds", "-1"],
    ],
    ids=["no-pool", "both", "unknown-pool", "no-region", "zero-slots", "negative-lease"],
)
def test_bad_flags_are_refused_by_the_parser(
    started: list[loop.WorkerSettings], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["worker", *args])
    assert exit_.value.code == 2
    assert started == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "Acme!"], r"--tenant 'Acme!': not a Tenant name"),
        (["--tenant", "Acme"], r"--tenant 'Acme': not a Tenant name"),
        (["--tenant", "acme", "--providers", "local,dalle"], r"providers: .*dalle"),
        (["--tenant", "acme", "--providers", "local,local"], r"providers: must be distinct"),
        (
            ["--tenant", "acme", "--redis-retry-attempts", "99"],
            r"--redis-retry-attempts \(IMAGEGEN_REDIS_RETRY_ATTEMPTS\): .*less than or equal",
        ),
        (
            ["--tenant", "acme", "--redis-url", "rediss://r", "--redis-ca-file", "/nowhere"],
            r"caFile: cannot read /nowhere: No such file",
        ),
    ],
)
def test_bad_settings_exit_2_with_a_message_naming_them(
    started: list[loop.WorkerSettings],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert cli.main(["worker", "--region", "r", *args]) == 2
    assert started == []
    err = capsys.readouterr().err
    assert err.startswith("imagegen worker: ")
    assert re.search(message, err)
