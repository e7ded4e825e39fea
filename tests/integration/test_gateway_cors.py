"""CORS of the live gateway, as a browser extension's page meets it: the session's gateway
allows one origin (conftest.GATEWAY_CORS_ORIGIN), whose real requests and preflights get
the CORS headers; every other origin gets none, and no answer ever allows credentials. A
gateway told to allow any origin ("*") refuses to start, naming the setting."""

from __future__ import annotations

import pathlib

import httpx
import pytest

from imagegen.localcluster import process, redis
from tests.integration import gatewayproc
from tests.integration.conftest import GATEWAY_CORS_ORIGIN, GATEWAY_REDIS_DB
from tests.integration.gatewayworld import GatewayWorld, items

BATCHES = "/api/v1/batches"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}
OTHER_ORIGINS = [
    "https://evil.example",
    "chrome-extension://ponmlkjihgfedcbaponmlkjihgfedcba",  # another extension
    GATEWAY_CORS_ORIGIN + "x",  # a name that only starts like the allowed one
    GATEWAY_CORS_ORIGIN.replace("chrome-extension", "https"),
    "null",  # a sandboxed frame or a file:// page
]


def cors_headers(answer: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in answer.headers.items() if k.lower().startswith("access-control-")}


def names(header: str) -> set[str]:
    return {name.strip().lower() for name in header.split(",")}


def test_the_allowed_origin_gets_the_cors_headers_on_real_requests(
    gateway_world: GatewayWorld,
) -> None:
    _, key = gateway_world.ready_tenant("cors")
    with gateway_world.client(key, Origin=GATEWAY_CORS_ORIGIN) as http:
        listed = http.get(BATCHES)
        created = http.post(BATCHES, json={"items": items(1)})

    for answer in (listed, created):
        assert answer.status_code in (200, 202), answer.text
        assert answer.headers["access-control-allow-origin"] == GATEWAY_CORS_ORIGIN
        assert "access-control-allow-credentials" not in answer.headers
        assert "origin" in names(answer.headers["vary"])
        exposed = names(answer.headers["access-control-expose-headers"])
        assert {"location", "ratelimit", "ratelimit-policy", "retry-after"} <= exposed
    assert created.headers["location"].startswith(BATCHES + "/")


def test_the_allowed_origin_gets_its_preflight_answered(gateway_world: GatewayWorld) -> None:
    with gateway_world.client(Origin=GATEWAY_CORS_ORIGIN) as http:
        answer = http.options(BATCHES, headers=PREFLIGHT)

    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == GATEWAY_CORS_ORIGIN
    assert "post" in names(answer.headers["access-control-allow-methods"])
    allowed = names(answer.headers["access-control-allow-headers"])
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert answer.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in answer.headers


def test_any_other_origin_gets_no_cors_header_on_a_request_or_a_preflight(
    gateway_world: GatewayWorld,
) -> None:
    _, key = gateway_world.ready_tenant("nocors")
    answers = {}
    for origin in OTHER_ORIGINS:
        with gateway_world.client(key, Origin=origin) as http:
            listed = http.get(BATCHES)
            preflight = http.options(BATCHES, headers=PREFLIGHT)
        answers[origin] = (
            (listed.status_code, cors_headers(listed)),
            (preflight.status_code, cors_headers(preflight)),
        )

    # The request itself is answered (CORS is the browser's rule), without the headers
    # that would let the page read the answer; the preflight is refused.
    assert answers == {origin: ((200, {}), (400, {})) for origin in OTHER_ORIGINS}


def test_a_gateway_told_to_allow_any_origin_refuses_to_start_naming_the_setting(
    redis_server: redis.LocalRedis, tmp_path: pathlib.Path
) -> None:
    gateway = gatewayproc.GatewayProcess(
        kubeconfig=tmp_path / "unused-kubeconfig",
        redis_url=f"redis://127.0.0.1:{redis_server.port}/{GATEWAY_REDIS_DB}",
        workdir=tmp_path,
        extra_settings={"cors_origins": ["*"]},
    )
    with pytest.raises(process.StartError, match=r"cors_origins\.0: String should match"):
        gateway.start()
