"""lightkube resource classes for our custom resources, and the client factory every
process uses, so timeouts and the field manager are decided in one place."""

from __future__ import annotations

import pathlib
from typing import Any, TypedDict

import httpx2
import lightkube
from lightkube import generic_resource

from imagegen.api import meta

Tenant = generic_resource.create_global_resource(
    group=meta.GROUP, version=meta.VERSION, kind="Tenant", plural="tenants"
)
ImageBatch = generic_resource.create_namespaced_resource(
    group=meta.GROUP, version=meta.VERSION, kind="ImageBatch", plural="imagebatches"
)


def as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube object as the plain dict the apiserver sent."""
    plain: dict[str, Any] = obj.to_dict()
    return plain


async def get_or_none(
    client: lightkube.AsyncClient, kind: Any, name: str, *, namespace: str | None = None
) -> Any:
    """The object, or None when the apiserver has no such object (404)."""
    try:
        return await client.get(kind, name, namespace=namespace)
    except lightkube.ApiError as error:
        if error.status.code == 404:
            return None
        raise


async def delete_if_present(
    client: lightkube.AsyncClient, kind: Any, name: str, *, namespace: str | None = None
) -> None:
    """Delete the object; one that is gone already is as good."""
    try:
        await client.delete(kind, name, namespace=namespace)
    except lightkube.ApiError as error:
        if error.status.code != 404:
            raise


class _ClientSettings(TypedDict):
    config: lightkube.KubeConfig
    timeout: httpx2.Timeout
    field_manager: str
    trust_env: bool


def _settings(
    *, path: pathlib.Path, request_seconds: float, connect_seconds: float
) -> _ClientSettings:
    return {
        "config": lightkube.KubeConfig.from_file(path),
        "timeout": httpx2.Timeout(request_seconds, connect=connect_seconds),
        "field_manager": meta.FIELD_MANAGER,
        # A kubeconfig names its server; an ambient HTTPS_PROXY must not reroute it.
        "trust_env": False,
    }


def client_from_kubeconfig(
    *,
    path: pathlib.Path,
    request_timeout_seconds: float = 15.0,
    connect_timeout_seconds: float = 5.0,
) -> lightkube.Client:
    """A synchronous client for the current context of a kubeconfig file, with explicit
    timeouts (never the library default) and our field manager for server-side apply."""
    return lightkube.Client(
        **_settings(
            path=path,
            request_seconds=request_timeout_seconds,
            connect_seconds=connect_timeout_seconds,
        )
    )


def async_client_from_kubeconfig(
    *,
    path: pathlib.Path,
    request_timeout_seconds: float = 15.0,
    connect_timeout_seconds: float = 5.0,
) -> lightkube.AsyncClient:
    """The asynchronous twin of client_from_kubeconfig, with the same settings."""
    return lightkube.AsyncClient(
        **_settings(
            path=path,
            request_seconds=request_timeout_seconds,
            connect_seconds=connect_timeout_seconds,
        )
    )
