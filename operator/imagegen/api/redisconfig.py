"""How a process reaches a Redis: one model for the operator, gateway, worker and sim.

One URL says single node or cluster, and plain or TLS:

    redis://host:6379/0                       one node (database 0..15)
    rediss://host:6380/0                      one node over TLS
    redis+cluster://seed1:6379,seed2:6379     a Redis Cluster, from one or more seed nodes
    rediss+cluster://seed1:6380               a Redis Cluster over TLS

A cluster URL lists seed nodes only: the client discovers the rest (CLUSTER SLOTS) and
follows failovers by itself, so one reachable seed is enough. The model has no Sentinel
form: Redis Cluster already gives failover with replicas, and sharding besides, so a
Sentinel deployment would be a third topology to test for no gain in production.

`RedisSettings` (the URL, timeouts, retries) is what every process using one Redis agrees
on. A URL never carries a password, and a CA bundle is a file of the process that reads
it: `RedisConnection` adds both as files of one process (a mounted Secret or ConfigMap),
while the operator config names a region's Secret and ConfigMap instead
(`operatorconfig.RegionRedis`), since the operator reads them through the apiserver and
the worker pods mount them. `OPTIONS` spells a RedisConnection as flat options, the
`--redis-*` flags and `IMAGEGEN_REDIS_*` variables of the worker and the simulation, which
the worker Deployment sets.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import urllib.parse
from collections.abc import Mapping
from typing import Annotated, Any, Final, Self

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


Url = Annotated[str, pydantic.Field(json_schema_extra={"pattern": URL_PATTERN})]
"""A Redis URL (`parse_url` checks it)."""


class RedisSettings(meta.Model):
    """A Redis (one node or a cluster), and how long to wait for it: what every process
    that uses it agrees on."""

    url: Url
    """redis://host:port/db, rediss://..., or redis+cluster://seed[:port][,seed...] (or
    rediss+cluster://) for a Redis Cluster. No credentials: the password comes from a Secret."""
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


class RedisConnection(RedisSettings):
    """A Redis as one process reaches it: the settings, and the CA bundle and the password
    as files of that process (mounted from a Secret or a ConfigMap). The password may come
    from the environment instead (`PASSWORD_VARIABLE` for the worker and the simulation)."""

    ca_file: pathlib.Path | None = None
    """PEM bundle of the CA that signed the server certificates, for a TLS URL with a
    private CA; the system's trust store when omitted."""
    password_file: pathlib.Path | None = None
    """A file holding the password (a mounted Secret key); a trailing newline is not part
    of it."""

    @pydantic.model_validator(mode="after")
    def _ca_only_with_tls(self) -> Self:
        if self.ca_file is not None and not self.address.tls:
            raise ValueError("caFile: set for a plain URL; a CA needs rediss:// (TLS)")
        return self


PASSWORD_VARIABLE: Final = "IMAGEGEN_REDIS_PASSWORD"  # noqa: S105 - a variable name
"""The variable a worker or the simulation reads its Redis password from (the worker
Deployment sets it from the region's passwordSecret); never a flag, never logged."""


def _option_paths() -> dict[str, tuple[str, ...]]:
    """Option name (`retry-attempts`) -> field path (`retry`, `attempts`), every field of
    RedisConnection, so that a new field is a new option without more code."""
    paths: dict[str, tuple[str, ...]] = {}
    for name, field in RedisConnection.model_fields.items():
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, pydantic.BaseModel):
            for inner in nested.model_fields:
                paths[f"{name}_{inner}".replace("_", "-")] = (name, inner)
        else:
            paths[name.replace("_", "-")] = (name,)
    return paths


_OPTION_PATHS: Final = _option_paths()
OPTIONS: Final = tuple(_OPTION_PATHS)
"""RedisConnection as flat options (`url`, `ca-file`, `retry-attempts`, ...): the flag
`--redis-<option>` and the variable `IMAGEGEN_REDIS_<OPTION>` of each (`variable`)."""


def variable(option: str) -> str:
    """The environment variable of an option: `ca-file` -> IMAGEGEN_REDIS_CA_FILE."""
    return "IMAGEGEN_REDIS_" + option.replace("-", "_").upper()


def to_options(settings: RedisSettings) -> dict[str, str]:
    """The options that carry `settings` to another process (the worker Deployment's
    variables): every field it has and is set, as text."""
    dumped = settings.model_dump(mode="json", by_alias=False)
    found: dict[str, str] = {}
    for option, path in _OPTION_PATHS.items():
        value: Any = dumped
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            found[option] = str(value)
    return found


def from_options(values: Mapping[str, str | None]) -> RedisConnection:
    """A RedisConnection from option -> text; a missing or empty option takes the model's
    default. ValueError names the flag and the variable of a bad or unknown option."""
    unknown = sorted(set(values) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown Redis options: {', '.join(unknown)}")
    document: dict[str, Any] = {}
    for option, text in values.items():
        if text:
            *parents, leaf = _OPTION_PATHS[option]
            target = document
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = text
    try:
        return RedisConnection.model_validate(document)
    except pydantic.ValidationError as error:
        raise ValueError("; ".join(_describe(line) for line in error.errors())) from None


def from_arguments(arguments: Mapping[str, Any]) -> RedisConnection:
    """`from_options` for parsed `--redis-<option>` flags (argparse's `vars(namespace)`)."""
    return from_options(
        {option: arguments.get("redis_" + option.replace("-", "_")) for option in OPTIONS}
    )


def _describe(line: Any) -> str:
    path = tuple(str(part) for part in line["loc"])
    option = next((name for name, known in _OPTION_PATHS.items() if known == path), None)
    message = str(line["msg"]).removeprefix("Value error, ")
    # A model-level check (caFile without TLS) has no location: its message names the field.
    if option is None:
        return message
    return f"--redis-{option} ({variable(option)}): {message}"


def split_credentials(url: str) -> tuple[str, str | None]:
    """A URL kept whole in a Secret (`redis://:PASSWORD@host:6379/0`) as the URL without
    its credentials and the password (percent-decoded; None when it has none)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if not at:
        return url, None
    password = urllib.parse.unquote(userinfo.partition(":")[2])
    return scheme + sep + hosts, password or None
