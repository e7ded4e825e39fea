"""One Redis settings model and one client factory: what a URL means, and which client it
builds (no server is contacted: clients connect on first use)."""

from __future__ import annotations

import pathlib

import pydantic
import pytest
import redis.asyncio

from imagegen import redisconn
from imagegen.api import operatorconfig, redisconfig


def test_single_node_url() -> None:
    address = redisconfig.parse_url("redis://redis.us-east:6380/2")
    assert address == redisconfig.Address(
        nodes=(redisconfig.Node(host="redis.us-east", port=6380),), cluster=False, tls=False, db=2
    )


def test_cluster_url_lists_seed_nodes_with_the_default_port() -> None:
    address = redisconfig.parse_url("rediss+cluster://a:7000,b,[::1]:7002")
    assert address.cluster
    assert address.tls
    assert address.db == 0
    assert [(node.host, node.port) for node in address.nodes] == [
        ("a", 7000),
        ("b", 6379),
        ("::1", 7002),
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://r:6379", "must start with one of"),
        ("redis://user:secret@r:6379/0", "must not carry credentials"),
        ("redis://a:1,b:2/0", r"use redis\+cluster:// for seeds"),
        ("redis+cluster://a:7000/3", "only database 0"),
        ("redis://r:6379/16", "database must be 0..15"),
        ("redis://r:70000", "must be 1..65535"),
        ("redis+cluster://a:7000,,b", "is not host or host:port"),
    ],
)
def test_bad_urls_are_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        redisconfig.parse_url(url)


def test_the_region_config_names_the_field_of_a_bad_url() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"url\n.*must not carry credentials"):
        operatorconfig.RegionRedis.model_validate({"url": "redis://u:p@r:6379/0"})


def test_region_redis_takes_cluster_seeds_tls_a_ca_timeouts_and_retries() -> None:
    region = operatorconfig.RegionRedis.model_validate(
        {
            "url": "rediss+cluster://r1:6379,r2:6379",
            "ca": {"configMap": "redis-ca"},
            "connectTimeoutSeconds": 1.5,
            "commandTimeoutSeconds": 4,
            "retry": {"attempts": 5, "backoffBaseSeconds": 0.1, "backoffCapSeconds": 2},
            "passwordSecret": {"name": "redis", "key": "password"},
        }
    )
    assert region.address.cluster
    assert region.address.tls
    assert region.ca == operatorconfig.CaBundleRef(config_map="redis-ca", key="ca.crt")
    assert region.retry.attempts == 5


@pytest.mark.parametrize(
    ("ca", "problem"),
    [
        ({"secret": "a", "configMap": "b"}, "exactly one of secret, configMap"),
        ({"key": "ca.crt"}, "exactly one of secret, configMap"),
        ({"secret": "a", "key": "../ca"}, "key"),
    ],
)
def test_a_region_ca_names_one_secret_or_config_map(ca: dict[str, str], problem: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=problem):
        operatorconfig.RegionRedis.model_validate({"url": "rediss://r:6379/0", "ca": ca})


def test_a_ca_for_a_plain_url_is_refused_naming_the_field() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"ca: set for a plain URL"):
        operatorconfig.RegionRedis.model_validate(
            {"url": "redis://r:6379/0", "ca": {"secret": "redis-ca"}}
        )
    with pytest.raises(pydantic.ValidationError, match=r"caFile: set for a plain URL"):
        redisconfig.RedisConnection(url="redis://r:6379/0", ca_file=pathlib.Path("/ca.crt"))


def _config(**redis: object) -> operatorconfig.OperatorConfig:
    return operatorconfig.OperatorConfig.model_validate(
        {
            "regions": [
                {
                    "name": "us-east",
                    "inCluster": True,
                    "redis": {"url": "redis://r:6379/0", **redis},
                }
            ],
            "regionRequestTimeoutSeconds": 9,
            "regionConnectTimeoutSeconds": 2,
        }
    )


def test_the_operator_bounds_a_regions_redis_by_its_region_timeouts() -> None:
    config = _config()
    settings = config.operator_redis(config.regions[0])
    assert (settings.connect_timeout_seconds, settings.command_timeout_seconds) == (2, 9)
    assert settings.url == "redis://r:6379/0"


def test_timeouts_a_regions_redis_sets_win_over_the_region_timeouts() -> None:
    config = _config(commandTimeoutSeconds=4, retry={"attempts": 1})
    settings = config.operator_redis(config.regions[0])
    assert (settings.connect_timeout_seconds, settings.command_timeout_seconds) == (2, 4)
    assert settings.retry.attempts == 1


# The flat options: the worker's flags and variables, the Deployment's env


def test_settings_go_to_options_and_come_back_the_same() -> None:
    settings = redisconfig.RedisConnection(
        url="rediss+cluster://a:7000,b:7001",
        ca_file=pathlib.Path("/etc/imagegen/redis-ca/ca.crt"),
        command_timeout_seconds=4,
        retry=redisconfig.Retry(attempts=6, backoff_cap_seconds=2),
    )
    options = redisconfig.to_options(settings)
    assert options == {
        "url": "rediss+cluster://a:7000,b:7001",
        "connect-timeout-seconds": "3.0",
        "command-timeout-seconds": "4.0",
        "retry-attempts": "6",
        "retry-backoff-base-seconds": "0.05",
        "retry-backoff-cap-seconds": "2.0",
        "ca-file": "/etc/imagegen/redis-ca/ca.crt",
    }
    assert redisconfig.from_options(options) == settings


def test_every_field_of_the_model_is_an_option_with_its_variable() -> None:
    assert redisconfig.OPTIONS == (
        "url",
        "connect-timeout-seconds",
        "command-timeout-seconds",
        "retry-attempts",
        "retry-backoff-base-seconds",
        "retry-backoff-cap-seconds",
        "ca-file",
        "password-file",
    )
    assert redisconfig.variable("retry-backoff-cap-seconds") == (
        "IMAGEGEN_REDIS_RETRY_BACKOFF_CAP_SECONDS"
    )


def test_empty_options_take_the_models_defaults() -> None:
    settings = redisconfig.from_options({"url": "redis://r:6379/0", "ca-file": ""})
    assert settings == redisconfig.RedisConnection(url="redis://r:6379/0")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (
            {"url": "redis://r", "retry-attempts": "11"},
            r"--redis-retry-attempts \(IMAGEGEN_REDIS_RETRY_ATTEMPTS\): .*less than or equal to 10",
        ),
        ({"url": "http://r"}, r"--redis-url \(IMAGEGEN_REDIS_URL\): must start with one of"),
        ({"url": "redis://r", "ca-file": "/ca.crt"}, "^caFile: set for a plain URL"),
        ({"url": "redis://r", "timeout": "1"}, "unknown Redis options: timeout"),
    ],
    ids=["retries-over-10", "not-redis", "ca-without-tls", "unknown"],
)
def test_bad_options_are_refused_naming_the_flag_and_variable(
    options: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        redisconfig.from_options(options)


def test_a_password_in_a_secret_held_url_is_taken_out_of_the_url() -> None:
    assert redisconfig.split_credentials("redis://:s%40cret@127.0.0.1:6391/1") == (
        "redis://127.0.0.1:6391/1",
        "s@cret",
    )
    assert redisconfig.split_credentials("redis+cluster://a:1,b:2") == (
        "redis+cluster://a:1,b:2",
        None,
    )


# Clients and their credentials


async def test_a_single_node_url_builds_a_plain_client_with_the_settings() -> None:
    settings = redisconfig.RedisSettings(
        url="redis://127.0.0.1:6390/3", connect_timeout_seconds=1.5, command_timeout_seconds=4
    )
    client = redisconn.connect(settings, credentials=redisconn.Credentials(password="pw"))
    try:
        assert isinstance(client, redis.asyncio.Redis)
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 3)
        assert kwargs["password"] == "pw"
        assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (1.5, 4)
        assert kwargs["retry"].get_retries() == settings.retry.attempts
        assert "ssl_ca_data" not in kwargs
    finally:
        await client.aclose()


async def test_a_cluster_url_builds_a_tls_cluster_client_from_its_seeds() -> None:
    client = redisconn.connect(
        redisconfig.RedisSettings(url="rediss+cluster://127.0.0.1:7000,127.0.0.2:7001"),
        credentials=redisconn.Credentials(ca_pem="-----BEGIN CERTIFICATE-----"),
    )
    try:
        assert isinstance(client, redis.asyncio.RedisCluster)
        assert set(client.nodes_manager.startup_nodes) == {"127.0.0.1:7000", "127.0.0.2:7001"}
        kwargs = client.connection_kwargs
        assert kwargs["connection_class"] is redis.asyncio.connection.SSLConnection
        assert kwargs["ssl_ca_data"] == "-----BEGIN CERTIFICATE-----"
    finally:
        await client.aclose()


def test_local_credentials_read_the_ca_and_password_files(tmp_path: pathlib.Path) -> None:
    (tmp_path / "ca.crt").write_text("PEM")
    (tmp_path / "password").write_text("s3cret\n")
    connection = redisconfig.RedisConnection(
        url="rediss://r:6380/0",
        ca_file=tmp_path / "ca.crt",
        password_file=tmp_path / "password",
    )
    credentials = redisconn.local_credentials(connection)
    assert credentials == redisconn.Credentials(password="s3cret", ca_pem="PEM")
    assert "s3cret" not in repr(credentials)


def test_a_password_from_the_environment_is_used_without_a_file() -> None:
    connection = redisconfig.RedisConnection(url="redis://r:6379/0")
    assert redisconn.local_credentials(connection, password="pw").password == "pw"
    assert redisconn.local_credentials(connection) == redisconn.Credentials()


def test_unreadable_or_doubled_credentials_are_refused_naming_the_field(
    tmp_path: pathlib.Path,
) -> None:
    missing = redisconfig.RedisConnection(url="rediss://r:6380/0", ca_file=tmp_path / "nope")
    with pytest.raises(ValueError, match=r"^caFile: cannot read .*nope: No such file"):
        redisconn.local_credentials(missing)
    (tmp_path / "password").write_text("a")
    both = redisconfig.RedisConnection(url="redis://r:6379/0", password_file=tmp_path / "password")
    with pytest.raises(ValueError, match=r"^passwordFile: set, and a password came from"):
        redisconn.local_credentials(both, password="b")
