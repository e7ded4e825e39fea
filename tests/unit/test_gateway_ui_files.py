"""The batch UI's files as the gateway serves them: shipped in the package, under /ui/,
with a Content-Security-Policy that allows no inline script and nothing from elsewhere.
(What the page does in a browser is tests/integration/test_batch_ui.py.)"""

import re

import pytest
from fastapi import testclient

from imagegen.gateway import app, settings
from imagegen.gateway.routes import ui


@pytest.fixture
def http() -> testclient.TestClient:
    # Not entered as a context manager: no lifespan, so nothing connects to Kubernetes or
    # Redis; static files and redirects need neither.
    return testclient.TestClient(app.create_app(settings.GatewaySettings()))


def test_the_page_and_its_modules_are_served_with_a_strict_policy(
    http: testclient.TestClient,
) -> None:
    for path in ("/ui/", "/ui/app.js", "/ui/api.js", "/ui/live.js", "/ui/style.css"):
        answer = http.get(path)
        assert answer.status_code == 200, path
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert (
        http.get("/ui/app.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )


def test_the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere() -> None:
    page = (ui.FILES / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", page) == ['<script type="module" src="app.js">']
    assert "<style" not in page
    assert not re.search(r"\son[a-z]+=", page), "inline event handler"
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "a resource from elsewhere"


def test_every_form_control_has_a_label() -> None:
    page = (ui.FILES / "index.html").read_text()
    controls = re.findall(r"<(?:input|textarea|select)[^>]*\sid=\"([^\"]+)\"", page)
    labelled = set(re.findall(r"<label for=\"([^\"]+)\"", page))
    assert controls
    assert set(controls) <= labelled


def test_the_key_is_kept_in_session_storage_only() -> None:
    scripts = "".join(path.read_text() for path in ui.FILES.glob("*.js"))
    assert "sessionStorage" in scripts
    assert "localStorage" not in scripts
    assert "document.cookie" not in scripts


def test_the_gateway_address_leads_to_the_ui(http: testclient.TestClient) -> None:
    answer = http.get("/", follow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["location"] == "/ui/"
