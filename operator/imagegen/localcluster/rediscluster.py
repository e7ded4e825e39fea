"""A real Redis Cluster on loopback: N primaries with a replica each, formed by
`redis-cli --cluster create`, with a short node timeout so a killed primary's replica takes
over within seconds (tests, benchmarks, the chaos cases)."""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import redis
from redis import crc

from imagegen.localcluster import process
from imagegen.localcluster import redis as localredis

NODE_TIMEOUT_MS = 1000
"""cluster-node-timeout: a primary silent this long is failing; its replica is promoted
about one more timeout later. Production keeps Redis's default (15 s)."""


@dataclasses.dataclass(kw_only=True)
class LocalRedisCluster:
    """The nodes of a running cluster and its URL."""

    nodes: list[localredis.LocalRedis]

    @property
    def url(self) -> str:
        """redis+cluster:// URL naming every node as a seed."""
        seeds = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"redis+cluster://{seeds}"

    def node(self, port: int) -> localredis.LocalRedis:
        """The node listening on `port`."""
        return next(node for node in self.nodes if node.port == port)

    def primary_of(self, key: str) -> localredis.LocalRedis:
        """The node serving the slot of `key` right now (after any failover)."""
        slot = crc.key_slot(key.encode())
        for shard in self._shards():
            if shard.first <= slot <= shard.last:
                return self.node(shard.primary)
        raise LookupError(f"no node serves slot {slot}")

    def primaries(self) -> list[localredis.LocalRedis]:
        """The nodes that serve slots right now."""
        return [self.node(shard.primary) for shard in self._shards()]

    def wait_healthy(self, *, timeout_seconds: float = 60.0, replicas: bool = True) -> None:
        """Wait until every running node sees the cluster ok with all slots served by
        running primaries and, with `replicas`, each primary has a replica in sync (after
        a primary was killed its promoted replica has none: wait with replicas=False)."""
        deadline = time.monotonic() + timeout_seconds
        while not self._healthy(replicas=replicas):
            if time.monotonic() > deadline:
                raise process.StartError(f"Redis Cluster not healthy:\n{self._describe()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop and reap every node."""
        for node in self.nodes:
            node.stop()

    def _shards(self) -> list[_Shard]:
        """Who serves which slots, as a running node sees it (CLUSTER SHARDS, Redis 7)."""
        for node in self._running():
            try:
                with _client(node) as client:
                    reply = client.execute_command("CLUSTER SHARDS")
            except redis.RedisError:
                continue
            return [shard for entry in reply for shard in _Shard.parse(entry)]
        raise LookupError("no running node answers CLUSTER SHARDS")

    def _running(self) -> Iterator[localredis.LocalRedis]:
        return (node for node in self.nodes if node.child.running())

    def _healthy(self, *, replicas: bool) -> bool:
        try:
            for node in self._running():
                with _client(node) as client:
                    # redis-py parses the reply into a dict of strings.
                    info = client.execute_command("CLUSTER INFO")
                    if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != "16384":
                        return False
            running = {node.port for node in self._running()}
            for shard in self._shards():
                if shard.primary not in running:
                    return False
                if not replicas:
                    continue
                if not running & set(shard.replicas):
                    return False
                # A replica's own health says "loading" until the first write moves its
                # offset; its primary knows whether it is in sync.
                with _client(self.node(shard.primary)) as client:
                    if not _replica_online(client.info("replication")):
                        return False
        except (redis.RedisError, LookupError, OSError):
            return False
        return True

    def _describe(self) -> str:
        lines = []
        for node in self.nodes:
            state = "running" if node.child.running() else "stopped"
            lines.append(f"127.0.0.1:{node.port} {state}")
            if node.child.running():
                try:
                    with _client(node) as client:
                        lines.append(str(client.execute_command("CLUSTER NODES")))
                except redis.RedisError as error:
                    lines.append(f"  {error}")
        return "\n".join(lines)


def start(
    *,
    workdir: pathlib.Path,
    primaries: int = 6,
    appendonly: bool = False,
    timeout_seconds: float = 60.0,
) -> LocalRedisCluster:
    """Start 2 x `primaries` redis-servers in cluster mode and form a cluster of them, one
    replica per primary; AOF (appendfsync everysec) when `appendonly`."""
    cli = shutil.which("redis-cli")
    if cli is None:
        raise process.StartError("redis-cli is not on PATH; `make redis-server` installs it")
    nodes: list[localredis.LocalRedis] = []
    try:
        for index in range(2 * primaries):
            folder = workdir / f"node-{index}"
            nodes.append(
                localredis.start(
                    workdir=folder,
                    extra_args=[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(folder / "nodes.conf"),
                        "--cluster-node-timeout",
                        str(NODE_TIMEOUT_MS),
                        # The bus on a port of its own: port + 10000 may be taken or too big.
                        "--cluster-port",
                        str(process.free_port()),
                        # Replicas sync at once, not after the default 5 s wait for others.
                        "--repl-diskless-sync-delay",
                        "0",
                        "--appendonly",
                        "yes" if appendonly else "no",
                        "--appendfsync",
                        "everysec",
                    ],
                )
            )
        formed = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            check=False,
        )
        if formed.returncode != 0:
            raise process.StartError(f"redis-cli --cluster create failed:\n{formed.stdout}")
        cluster = LocalRedisCluster(nodes=nodes)
        cluster.wait_healthy(timeout_seconds=timeout_seconds)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return cluster


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Shard:
    """One range of slots, the port of its primary and those of its replicas."""

    first: int
    last: int
    primary: int
    replicas: tuple[int, ...]

    @classmethod
    def parse(cls, entry: dict[bytes, Any]) -> list[_Shard]:
        """The slot ranges of one CLUSTER SHARDS entry (none for a shard without slots)."""
        nodes = entry[b"nodes"]
        primaries = [
            n[b"port"] for n in nodes if n[b"role"] == b"master" and n[b"health"] != b"fail"
        ]
        if not primaries:
            return []
        replicas = tuple(n[b"port"] for n in nodes if n[b"role"] == b"replica")
        slots = entry[b"slots"]
        return [
            cls(first=slots[i], last=slots[i + 1], primary=primaries[0], replicas=replicas)
            for i in range(0, len(slots), 2)
        ]


def _replica_online(info: dict[str, object]) -> bool:
    # redis-py parses "slave0:ip=...,state=online,..." into a dict.
    return any(
        isinstance(value, dict) and value.get("state") == "online"
        for key, value in info.items()
        if key.startswith("slave")
    )


def _client(node: localredis.LocalRedis) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2, socket_connect_timeout=2)
