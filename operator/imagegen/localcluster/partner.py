"""The partner's path through the local stack: read a tenant's API key as a platform
engineer would hand it over, and submit a batch over HTTP to the gateway."""

from __future__ import annotations

import base64
import pathlib
import time
import uuid
from typing import Any

import httpx2
import lightkube
import yaml
from lightkube.resources import core_v1

from imagegen.kube import objects

# The operator's contract (controller/apikeys.py), which this layer may not import.
KEY_FIELD = "api-key"


def key_secret(tenant: str, namespace: str) -> tuple[str, str]:
    """(name, namespace) of the Secret the operator keeps the tenant's API key in
    (controller/apikeys.secret_name)."""
    return f"{tenant}-api-key", namespace


def key_command(*, kubeconfig: pathlib.Path, tenant: str, namespace: str) -> str:
    """The shell command that prints the tenant's API key."""
    name, where = key_secret(tenant, namespace)
    return (
        f"kubectl --kubeconfig {kubeconfig} get secret {name} -n {where}"
        f" -o jsonpath='{{.data.{KEY_FIELD}}}' | base64 -d"
    )


def read_key(
    client: lightkube.Client, *, tenant: str, namespace: str, timeout_seconds: float
) -> str:
    """The tenant's API key, waiting (bounded) for the operator to write its Secret."""
    name, where = key_secret(tenant, namespace)
    deadline = time.monotonic() + timeout_seconds
    while True:
        with objects.not_found_ignored():
            secret = client.get(core_v1.Secret, name, namespace=where)
            if secret.data and KEY_FIELD in secret.data:
                return base64.b64decode(secret.data[KEY_FIELD]).decode()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no Secret {where}/{name} after {timeout_seconds}s")
        time.sleep(0.5)


def request_from_manifest(path: pathlib.Path) -> tuple[str, dict[str, Any]]:
    """(tenant, API request body) for the ImageBatch in a manifest file: the same batch,
    as a partner would send it to POST /api/v1/batches."""
    spec = yaml.safe_load(path.read_text())["spec"]
    body: dict[str, Any] = {"items": spec["items"], "priority": spec.get("priority", "normal")}
    if spec.get("defaults"):
        body["defaults"] = spec["defaults"]
    return str(spec["tenant"]), body


def submit(
    *, base_url: str, key: str, body: dict[str, Any], timeout_seconds: float
) -> dict[str, Any]:
    """POST the batch with an Idempotency-Key, waiting (bounded) until the gateway knows
    the key: the operator publishes a new key's digest a moment after the Secret. A 401
    or 503 in that window is retried with the same Idempotency-Key, so never twice."""
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())}
    deadline = time.monotonic() + timeout_seconds
    with httpx2.Client(base_url=base_url, timeout=30, trust_env=False) as http:
        while True:
            reply = http.post("/api/v1/batches", json=body, headers=headers)
            if reply.status_code == 202:
                created: dict[str, Any] = reply.json()
                return created
            if reply.status_code not in (401, 503) or time.monotonic() > deadline:
                raise RuntimeError(f"POST /api/v1/batches: {reply.status_code} {reply.text}")
            time.sleep(0.5)
