"""The region registry: one Kubernetes client per regional cluster, each with explicit
timeouts and its own request rate limit, so a slow or dead region costs only itself."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiolimiter
import httpx2
import lightkube
import yaml
from lightkube.resources import core_v1
from redis import exceptions as redis_errors

from imagegen import redisconn
from imagegen.api import objectstore, operatorconfig
from imagegen.kube import clients
from imagegen.storage import base as storage
from imagegen.storage import stores

logger = logging.getLogger(__name__)

# Errors that mean "the region cannot be reached", as opposed to an answer we dislike.
UNREACHABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx2.TransportError,
    OSError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RateLimit:
    """Client-side bound on requests to one regional apiserver."""

    requests_per_second: float = 20.0
    """Sustained rate; apiserver priority and fairness protects the server, this protects
    the other tenants' reconciles from one tenant's burst."""
    burst: int = 40
    """Requests allowed at once above the sustained rate."""


@dataclasses.dataclass(kw_only=True)
class RegionClient:
    """An async client of one regional cluster behind a rate limiter, and its Redis."""

    name: str
    client: lightkube.AsyncClient
    limiter: aiolimiter.AsyncLimiter
    redis: redisconn.Client
    """The region's Redis (queues and progress), with bounded connect and command timeouts."""
    weight: int = 1
    """The region's relative capacity (operatorconfig Region.weight), for dispatch."""
    store: storage.Store | None = None
    """The region's object store (images), to delete a batch's images with the batch."""
    store_config: objectstore.ObjectStore = dataclasses.field(
        default_factory=objectstore.ObjectStore
    )

    @contextlib.asynccontextmanager
    async def call(self) -> AsyncIterator[lightkube.AsyncClient]:
        """Wait for a slot of the rate limit, then use the client."""
        async with self.limiter:
            yield self.client

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.close()
        await self.redis.aclose()


@dataclasses.dataclass(kw_only=True)
class Registry:
    """Clients of every region the operator configuration names."""

    clients: dict[str, RegionClient]
    stores: contextlib.AsyncExitStack = dataclasses.field(default_factory=contextlib.AsyncExitStack)
    """Keeps the regions' object-store clients open until `close`."""

    def get(self, name: str) -> RegionClient | None:
        """The client of a region, or None when the registry does not know it."""
        return self.clients.get(name)

    def names(self) -> list[str]:
        """Region names in configuration order."""
        return list(self.clients)

    async def close(self) -> None:
        """Close every client."""
        for region in self.clients.values():
            await region.close()
        await self.stores.aclose()


async def connect(
    *,
    config: operatorconfig.OperatorConfig,
    management: lightkube.AsyncClient,
    rate_limit: RateLimit | None = None,
) -> Registry:
    """Build one client per configured region; kubeconfig Secrets are read from the
    management cluster once, here. Building a client does not contact the region."""
    rate_limit = rate_limit or RateLimit()
    found = {}
    opened = contextlib.AsyncExitStack()
    for region in config.regions:
        kube_config = await _kubeconfig(
            region=region, management=management, default_namespace=config.operator_namespace
        )
        found[region.name] = RegionClient(
            name=region.name,
            weight=region.weight,
            client=clients.async_client(
                kubeconfig=kube_config,
                request_seconds=config.region_request_timeout_seconds,
                connect_seconds=config.region_connect_timeout_seconds,
            ),
            limiter=aiolimiter.AsyncLimiter(
                rate_limit.burst, rate_limit.burst / rate_limit.requests_per_second
            ),
            redis=redisconn.connect(
                config.operator_redis(region),
                credentials=await _redis_credentials(
                    region=region,
                    management=management,
                    default_namespace=config.operator_namespace,
                ),
            ),
            store=await opened.enter_async_context(
                stores.open_store(
                    config=region.storage,
                    credentials=await _store_credentials(
                        region=region,
                        management=management,
                        default_namespace=config.operator_namespace,
                    ),
                )
            ),
            store_config=region.storage,
        )
    return Registry(clients=found, stores=opened)


async def _store_credentials(
    *,
    region: operatorconfig.Region,
    management: lightkube.AsyncClient,
    default_namespace: str,
) -> stores.Credentials | None:
    """The object store's keys from the management cluster's copy of its Secret, if set."""
    name = region.storage.credentials_secret
    if name is None:
        return None
    values = [
        (
            await _secret_value(
                reference=operatorconfig.SecretKeyRef(name=name, key=key),
                management=management,
                default_namespace=default_namespace,
                what=f"region {region.name} object store credentials",
            )
        ).decode()
        for key in (objectstore.ACCESS_KEY_ID, objectstore.SECRET_ACCESS_KEY)
    ]
    return stores.Credentials(access_key_id=values[0], secret_access_key=values[1])


async def _redis_credentials(
    *,
    region: operatorconfig.Region,
    management: lightkube.AsyncClient,
    default_namespace: str,
) -> redisconn.Credentials:
    """The Redis password and CA bundle from the management cluster's copies of the
    region's passwordSecret and ca, where set."""
    password = ca_pem = None
    if region.redis.password_secret is not None:
        password = (
            await _secret_value(
                reference=region.redis.password_secret,
                management=management,
                default_namespace=default_namespace,
                what=f"region {region.name} redis password",
            )
        ).decode()
    if region.redis.ca is not None:
        ca_pem = await _ca_bundle(
            reference=region.redis.ca,
            management=management,
            default_namespace=default_namespace,
            what=f"region {region.name} redis CA",
        )
    return redisconn.Credentials(password=password, ca_pem=ca_pem)


async def _ca_bundle(
    *,
    reference: operatorconfig.CaBundleRef,
    management: lightkube.AsyncClient,
    default_namespace: str,
    what: str,
) -> str:
    namespace = reference.namespace or default_namespace
    if reference.secret is not None:
        return (
            await _secret_value(
                reference=operatorconfig.SecretKeyRef(
                    name=reference.secret, key=reference.key, namespace=namespace
                ),
                management=management,
                default_namespace=default_namespace,
                what=what,
            )
        ).decode()
    assert reference.config_map is not None, "the config model requires one source"
    found = await management.get(core_v1.ConfigMap, reference.config_map, namespace=namespace)
    value = (found.data or {}).get(reference.key)
    if value is None:
        raise KeyError(f"{what}: ConfigMap {reference.config_map} has no key {reference.key!r}")
    return str(value)


async def _secret_value(
    *,
    reference: operatorconfig.SecretKeyRef,
    management: lightkube.AsyncClient,
    default_namespace: str,
    what: str,
) -> bytes:
    secret = await management.get(
        core_v1.Secret, reference.name, namespace=reference.namespace or default_namespace
    )
    encoded = (secret.data or {}).get(reference.key)
    if encoded is None:
        raise KeyError(f"{what}: Secret {reference.name} has no key {reference.key!r}")
    return base64.b64decode(encoded)


async def _kubeconfig(
    *,
    region: operatorconfig.Region,
    management: lightkube.AsyncClient,
    default_namespace: str,
) -> clients.Source:
    if region.kubeconfig is not None:
        return region.kubeconfig
    if region.in_cluster:
        return None
    reference = region.kubeconfig_secret
    assert reference is not None, "the config model requires one way in"
    document: Mapping[str, Any] = yaml.safe_load(
        await _secret_value(
            reference=reference,
            management=management,
            default_namespace=default_namespace,
            what=f"region {region.name} kubeconfig",
        )
    )
    return lightkube.KubeConfig.from_dict(dict(document))
