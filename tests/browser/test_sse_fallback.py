"""With WebSockets blocked (a proxy that refuses them), the pages fall back to server-sent events: the list and the
progress page still fill live, and the page says which transport it uses."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, log_in
from tests.browser.test_pages import PAPER_TIMEOUT, alice, api_entities, shown_entities, slow_pdf  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def block_websockets(page) -> list[str]:
    """Refuse every WebSocket the page opens, as a proxy that blocks them would; returns the URLs tried."""
    tried: list[str] = []

    def refuse(ws) -> None:
        tried.append(ws.url)
        ws.close(code=1011, reason="blocked")

    page.route_web_socket(re.compile(r".*/ws/.*"), refuse)
    return tried


def test_pages_fall_back_to_sse_and_show_live_progress(page, browser_system, alice, tmp_path):  # noqa: F811
    tried = block_websockets(page)
    sse_requests: list[str] = []
    page.on("request", lambda request: "/stream/" in request.url and sse_requests.append(request.url))
    log_in(page, browser_system, "alice", "pw-alice-123")
    expect(page.locator("#conn-state")).to_have_text("connected", timeout=20_000)
    expect(page.locator("#conn-transport")).to_have_text("via SSE")
    assert tried, "the WebSocket was tried first"
    assert any(url.endswith("/api/papers/stream/?system=1") for url in sse_requests), sse_requests

    page.set_input_files("#id_file", str(slow_pdf(tmp_path)))
    page.get_by_role("button", name="Upload").click()
    row = page.locator("#paper-rows tr[data-paper-id]").first
    expect(row.locator("[data-field=status]")).to_have_text("processing", timeout=30_000)
    expect(page.locator("[data-stat=active_workers]")).not_to_have_text("–", timeout=15_000)  # system over SSE
    page.screenshot(path=SCREENSHOTS / "paper-list-sse.png", full_page=True)

    page.get_by_role("link", name="novanet-slow").click()
    paper_id = page.locator("#paper").get_attribute("data-paper-id")
    expect(page.locator("#conn-transport")).to_have_text("via SSE", timeout=20_000)
    expect(page.locator("#step")).to_have_text("Entity extraction", timeout=30_000)
    page.screenshot(path=SCREENSHOTS / "paper-detail-sse.png", full_page=True)
    expect(page.locator("#overall")).to_have_attribute("aria-valuenow", "100", timeout=PAPER_TIMEOUT)
    expect(page.locator("#status")).to_have_text("completed")
    assert shown_entities(page) == api_entities(browser_system, paper_id)
    assert any(f"/api/papers/{paper_id}/stream/" in url for url in sse_requests), sse_requests


def test_pages_say_websocket_when_it_opens(page, browser_system, alice):  # noqa: F811
    log_in(page, browser_system, "alice", "pw-alice-123")
    expect(page.locator("#conn-state")).to_have_text("connected")
    expect(page.locator("#conn-transport")).to_have_text("via WebSocket")
