"""CORS for the origins the settings name, and for no other; never with credentials."""

import httpx
import pydantic
import pytest
from fastapi import testclient

from imagegen.gateway import app, settings

EXTENSION = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"


def client(*origins: str) -> testclient.TestClient:
    # No lifespan: a preflight is answered by the middleware before any route runs.
    return testclient.TestClient(app.create_app(settings.GatewaySettings(cors_origins=[*origins])))


def preflight(http: testclient.TestClient, origin: str) -> httpx.Response:
    return http.options(
        "/api/v1/batches",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )


def test_a_configured_origin_gets_its_preflight_answered() -> None:
    answer = preflight(client(EXTENSION), EXTENSION)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == EXTENSION
    assert "POST" in answer.headers["access-control-allow-methods"]
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= {
        name.strip() for name in allowed.split(",")
    }
    assert "access-control-allow-credentials" not in answer.headers


def cors_headers(answer: httpx.Response) -> list[str]:
    return [name for name in answer.headers if name.lower().startswith("access-control-")]


def test_an_unlisted_origin_gets_no_cors_header() -> None:
    http = client(EXTENSION)
    answer = preflight(http, "https://evil.example")
    assert answer.status_code == 400
    assert cors_headers(answer) == []
    # A simple request's answer carries none either: the browser hides it from the page.
    plain = http.get("/healthz", headers={"Origin": "https://evil.example"})
    assert plain.status_code == 200
    assert cors_headers(plain) == []
    assert "origin" in plain.headers["vary"].lower()


def test_a_configured_origin_may_read_the_rate_limit_and_location_headers() -> None:
    answer = client(EXTENSION).get("/healthz", headers={"Origin": EXTENSION})
    assert answer.headers["access-control-allow-origin"] == EXTENSION
    exposed = answer.headers["access-control-expose-headers"].lower()
    assert {"location", "ratelimit", "retry-after"} <= {n.strip() for n in exposed.split(",")}


def test_without_configured_origins_no_origin_gets_cors() -> None:
    answer = preflight(client(), EXTENSION)
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("origin", ["*", "https://*.example.com", "https://a.example/path", ""])
def test_a_wildcard_or_malformed_origin_is_refused_naming_the_field(origin: str) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        settings.GatewaySettings(cors_origins=[origin])
    assert refused.value.errors()[0]["loc"] == ("cors_origins", 0)
