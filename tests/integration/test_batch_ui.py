"""The batch UI in a real browser: Debian's headless Chromium, driven by Playwright,
against the session's gateway, operator, workers and control plane. A person's path:
sign in, submit, watch a batch finish with its thumbnails, cancel one, read the errors.
Screenshots of the batch page go to test-artifacts/ (and, narrow, as a phone shows it)."""

from __future__ import annotations

import pathlib
import re
import shutil
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from imagegen.localcluster import redis
from tests.integration import workingtenant
from tests.integration.gatewayworld import GatewayWorld

ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "test-artifacts"
FINISH_MS = 240_000
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make test` installs it (apt-get install)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


class Session:
    """One browser tab on the UI, with what it saw: script errors, CSP reports, URLs."""

    def __init__(self, browser: Browser, base_url: str, *, width: int = 1100) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page: Page = self.context.new_page()
        self.base_url = base_url
        self.problems: list[str] = []
        self.urls: list[str] = []
        self.sockets: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))
        self.page.on(
            "console",
            lambda message: (
                self.problems.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        self.page.on("request", lambda request: self.urls.append(request.url))
        self.page.on("websocket", lambda socket: self.sockets.append(socket.url))
        self.page.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)

    def sign_in(self, key: str) -> None:
        self.page.goto(f"{self.base_url}/ui/")
        self.page.fill("#api-key", key)
        self.page.click("#signin-form button[type=submit]")

    def submit(self, prompts: list[str], *, size: str = "64x64") -> None:
        self.page.fill("#prompts", "\n".join(prompts))
        self.page.fill("#size", size)
        self.page.click("#submit-batch")

    def submitted_id(self) -> str:
        expect(self.page.locator("#create-status")).to_contain_text("accepted")
        found = re.search(
            r"Batch (batch-[0-9a-f]+) accepted", self.page.inner_text("#create-status")
        )
        assert found, self.page.inner_text("#create-status")
        return found.group(1)

    def listed(self) -> set[str]:
        return {
            str(row.get_attribute("data-batch"))
            for row in self.page.locator("#batch-table tbody tr").all()
        }

    def check(self, *keys: str) -> None:
        """No script error, no CSP violation, and no key in any URL the page asked for."""
        assert self.problems == [], self.problems
        for key in keys:
            assert not any(key in url for url in self.urls), "an API key in a URL"


@pytest.fixture
def sessions(browser: Browser, gateway_world: GatewayWorld) -> Iterator[Callable[[], Session]]:
    """Open tabs on the UI (each its own browser context: its own sessionStorage)."""
    opened: list[Session] = []

    def open_one() -> Session:
        opened.append(Session(browser, gateway_world.gateway.url))
        return opened[-1]

    yield open_one
    for each in opened:
        each.context.close()


@pytest.fixture
def tenant_with_workers(
    gateway_world: GatewayWorld,
    region_redis: dict[str, redis.LocalRedis],
    gateway_images: pathlib.Path,
    tmp_path: pathlib.Path,
) -> Iterator[tuple[str, str]]:
    with workingtenant.working_tenant(
        gateway_world, prefix="ui", redis_url=region_redis[workingtenant.REGION].url,
        images=gateway_images, logs=tmp_path / "logs",
    ) as found:  # fmt: skip
        yield found


def test_a_tenant_signs_in_submits_20_images_and_watches_them_arrive(
    sessions: Callable[[], Session], tenant_with_workers: tuple[str, str]
) -> None:
    _, key = tenant_with_workers
    session = sessions()
    page = session.page
    session.sign_in("igk_" + "w" * 43)
    expect(page.locator("#api-key-error")).to_contain_text("refused")
    expect(page.locator("#list-view")).to_be_hidden()

    session.sign_in(key)
    expect(page.locator("#list-view")).to_be_visible()
    expect(page.locator("#budget")).to_contain_text("Request budget:")
    assert page.evaluate("sessionStorage.getItem('imagegen.apiKey')") == key
    assert page.context.cookies() == []

    session.submit([f"a lighthouse, take {n}" for n in range(20)])
    batch_id = session.submitted_id()
    expect(page.locator(f'#batch-table tr[data-batch="{batch_id}"]')).to_be_visible()
    page.click(f'a[href="#/batches/{batch_id}"]')
    expect(page.locator("#batch-title")).to_have_text(f"Batch {batch_id}")
    expect(page.locator("#batch-phase")).to_have_text("Succeeded", timeout=FINISH_MS)
    expect(page.locator("#batch-progress-text")).to_have_text("20/20")
    thumbnails = page.locator("#items img")
    expect(thumbnails).to_have_count(20)
    loaded = thumbnails.evaluate_all("images => images.map(i => i.complete && i.naturalWidth)")
    assert loaded == [64] * 20, loaded
    expect(page.locator("#batch-live")).to_have_text("finished")
    expect(page.locator("#cancel-batch")).to_be_disabled()
    assert len(session.sockets) == 1
    assert re.search(rf"/api/v1/batches/{batch_id}/events\?ticket=igt_", session.sockets[0])

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "batch-page.png", full_page=True)
    page.set_viewport_size({"width": 380, "height": 800})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the batch page scrolls sideways on a narrow screen"
    page.screenshot(path=ARTIFACTS / "batch-page-narrow.png", full_page=True)
    session.check(key)


def test_another_tenant_sees_none_of_it_and_can_cancel_and_read_field_errors(
    sessions: Callable[[], Session],
    gateway_world: GatewayWorld,
    tenant_with_workers: tuple[str, str],
) -> None:
    _, first_key = tenant_with_workers
    with gateway_world.client(first_key) as http:
        theirs = http.post("/api/v1/batches", json={"items": [{"prompt": "theirs"}]}).json()["id"]
    # No workers for this one: its batches wait, so there is time to cancel them.
    _, key = gateway_world.ready_tenant("ui")
    session = sessions()
    page = session.page
    session.sign_in(key)
    # A new tenant's list, loaded: empty, so the other tenant's batch is not in it.
    expect(page.locator("#list-empty")).to_be_visible()
    assert theirs not in session.listed()

    session.submit(["a", "b"], size="huge")
    expect(page.locator("#size-error")).to_contain_text("pattern")
    expect(page.locator("#size")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#prompts-error")).to_have_text("")

    session.submit(["a quiet harbour", "a stormy harbour", "a harbour at night"])
    mine = session.submitted_id()
    expect(page.locator("#size-error")).to_have_text("")
    expect(page.locator("#batch-table tbody tr")).to_have_count(1)
    assert session.listed() == {mine}

    page.click(f'a[href="#/batches/{mine}"]')
    expect(page.locator("#batch-live")).to_have_text("live (WebSocket)")
    page.click("#cancel-batch")
    expect(page.locator("#batch-phase")).to_have_text("Cancelled", timeout=FINISH_MS // 2)

    page.goto(f"{session.base_url}/ui/#/batches/{theirs}")
    expect(page.locator("#batch-title")).to_have_text("Batch not found")
    expect(page.locator("#banner")).to_contain_text(f"no batch '{theirs}'")
    session.check(key, first_key)


def test_a_spent_budget_says_so_and_when_to_retry(
    sessions: Callable[[], Session], gateway_world: GatewayWorld
) -> None:
    _, key = gateway_world.ready_tenant("ui", requests_per_minute=1, burst=4)
    session = sessions()
    page = session.page
    session.sign_in(key)
    expect(page.locator("#list-view")).to_be_visible()
    banner = page.locator("#banner")
    for _ in range(4):
        session.submit(["one more"])
        page.wait_for_function(
            "() => !document.querySelector('#create-status').textContent.startsWith('Submitting')"
        )
        if banner.is_visible():
            break
    expect(banner).to_contain_text("Rate limit reached")
    expect(banner).to_contain_text(re.compile(r"Try again in \d+ s"))
    expect(page.locator("#budget")).to_contain_text("Request budget: 0")
    session.check(key)
