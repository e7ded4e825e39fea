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


def test_region_redis_takes_cluster_seeds_tls_timeouts_and_retries() -> None:
    region = operatorconfig.RegionRedis.model_validate(
        {
            "url": "rediss+cluster://r1:6379,r2:6379",
            "caFile": "/etc/redis/ca.crt",
            "connectTimeoutSeconds": 1.5,
            "commandTimeoutSeconds": 4,
            "retry": {"attempts": 5, "backoffBaseSeconds": 0.1, "backoffCapSeconds": 2},
            "passwordSecret": {"name": "redis", "key": "password"},
        }
    )
    assert region.address.cluster
    assert region.address.tls
    assert region.ca_file == pathlib.Path("/etc/redis/ca.crt")
    assert region.retry.attempts == 5


async def test_a_single_node_url_builds_a_plain_client_with_the_settings() -> None:
    settings = redisconfig.RedisConnection(
        url="redis://127.0.0.1:6390/3", connect_timeout_seconds=1.5, command_timeout_seconds=4
    )
    client = redisconn.connect(settings, password="pw")
    try:
        assert isinstance(client, redis.asyncio.Redis)
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 3)
        assert kwargs["password"] == "pw"
        assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (1.5, 4)
        assert kwargs["retry"].get_retries() == settings.retry.attempts
    finally:
        await client.aclose()


async def test_a_cluster_url_builds_a_cluster_client_from_its_seeds() -> None:
    client = redisconn.connect(
        redisconfig.RedisConnection(
            url="rediss+cluster://127.0.0.1:7000,127.0.0.2:7001", ca_file=pathlib.Path("/ca.crt")
        )
    )
    try:
        assert isinstance(client, redis.asyncio.RedisCluster)
        assert set(client.nodes_manager.startup_nodes) == {"127.0.0.1:7000", "127.0.0.2:7001"}
        kwargs = client.connection_kwargs
        assert kwargs["connection_class"] is redis.asyncio.connection.SSLConnection
        assert kwargs["ssl_ca_certs"] == "/ca.crt"
    finally:
        await client.aclose()


async def test_a_password_in_a_secret_held_url_is_taken_out_of_the_url() -> None:
    client = redisconn.connect_url("redis://:s%40cret@127.0.0.1:6391/1", timeout_seconds=2)
    try:
        assert isinstance(client, redis.asyncio.Redis)
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["password"] == "s@cret"
        assert (kwargs["port"], kwargs["db"], kwargs["socket_timeout"]) == (6391, 1, 2)
    finally:
        await client.aclose()
