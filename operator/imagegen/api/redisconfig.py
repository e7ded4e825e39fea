"""How a process reaches a Redis: one model for the operator, gateway, worker and sim.

One URL says single node or cluster, and plain or TLS:

    redis://host:6379/0                       one node (database 0..15)
    rediss://host:6380/0                      one node over TLS
    redis+cluster://seed1:6379,seed2:6379     a Redis Cluster, from one or more seed nodes
    rediss+cluster://seed1:6380               a Redis Cluster over TLS

A cluster URL lists seed nodes only: the client discovers the rest (CLUSTER SLOTS) and
follows failovers by itself, so one reachable seed is enough. A URL never carries a
password: each process reads it from a Secret (see `imagegen.redisconn`). The model has no
Sentinel form: Redis Cluster already gives failover with replicas, and sharding besides,
so a Sentinel deployment would be a third topology to test for no gain in production.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Annotated

import pydantic

from imagegen.api import meta

_HOST = r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]"
_NODE = re.compile(rf"^(?P<host>{_HOST})(:(?P<port>[0-9]{{1,5}}))?$")
_URL = re.compile(r"^(?P<scheme>rediss?)(?P<cluster>\+cluster)?://(?P<nodes>[^/]*)(/(?P<db>.*))?$")
URL_PATTERN = r"^rediss?(\+cluster)?://[^@/]+(/[0-9]+)?$"
"""The URL's shape for JSON schemas (Helm values); `parse_url` checks the rest."""
SCHEMES = ("redis://", "rediss://", "redis+cluster://", "rediss+cluster://")
DEFAULT_PORT = 6379


@dataclasses.dataclass(frozen=True, kw_only=True)
class Node:
    """One host and port."""

    host: str
    port: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class Address:
    """What a URL says: the nodes, whether they form a cluster, TLS, the database."""

    nodes: tuple[Node, ...]
    cluster: bool
    tls: bool
    db: int


def parse_url(url: str) -> Address:
    """The parts of a Redis URL; ValueError says what is wrong with it."""
    match = _URL.match(url)
    if match is None:
        raise ValueError(f"must start with one of {', '.join(SCHEMES)}")
    cluster = match["cluster"] is not None
    if "@" in match["nodes"]:
        raise ValueError("must not carry credentials: the password comes from a Secret")
    nodes = tuple(_node(text) for text in match["nodes"].split(","))
    if not cluster and len(nodes) != 1:
        raise ValueError("a single-node URL names one host; use redis+cluster:// for seeds")
    db_text = match["db"] or "0"
    if not db_text.isdigit() or int(db_text) > 15:
        raise ValueError(f"database must be 0..15, got {db_text!r}")
    if cluster and int(db_text) != 0:
        raise ValueError("a Redis Cluster has only database 0")
    return Address(nodes=nodes, cluster=cluster, tls=match["scheme"] == "rediss", db=int(db_text))


def _node(text: str) -> Node:
    match = _NODE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not host or host:port")
    port = int(match["port"] or DEFAULT_PORT)
    if not 1 <= port <= 65535:
        raise ValueError(f"port of {text!r} must be 1..65535")
    return Node(host=match["host"].strip("[]"), port=port)


class Retry(meta.Model):
    """Retries of a command that failed on a connection error or timeout."""

    attempts: Annotated[int, pydantic.Field(ge=0, le=10)] = 3
    """Retries after the first try; 0 disables them."""
    backoff_base_seconds: Annotated[float, pydantic.Field(gt=0, le=10)] = 0.05
    """First delay; it doubles per retry, with jitter."""
    backoff_cap_seconds: Annotated[float, pydantic.Field(gt=0, le=60)] = 1.0
    """Longest delay between two retries."""


class RedisConnection(meta.Model):
    """A Redis (one node or a cluster) and how to talk to it."""

    url: Annotated[str, pydantic.Field(json_schema_extra={"pattern": URL_PATTERN})]
    """redis://host:port/db, rediss://..., or redis+cluster://seed[:port][,seed...] (or
    rediss+cluster://) for a Redis Cluster. No credentials: the password comes from a Secret."""
    ca_file: pathlib.Path | None = None
    """CA bundle that signed the server certificates (TLS URLs); the system's when omitted."""
    connect_timeout_seconds: Annotated[float, pydantic.Field(gt=0, le=60)] = 3.0
    """Bound on opening a connection; short, so a dead node is seen fast."""
    command_timeout_seconds: Annotated[float, pydantic.Field(gt=0, le=120)] = 5.0
    """Bound on one command's answer."""
    retry: Retry = pydantic.Field(default_factory=Retry)
    """Retries of a command after a connection error or timeout (a cluster client also
    follows MOVED and failovers by itself)."""

    @pydantic.field_validator("url")
    @classmethod
    def _valid_url(cls, url: str) -> str:
        parse_url(url)
        return url

    @property
    def address(self) -> Address:
        """The URL's parts."""
        return parse_url(self.url)
