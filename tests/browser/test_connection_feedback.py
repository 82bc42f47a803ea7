"""When the live connection drops, the page says what happened, counts down to the next try, retries at once on
"Reconnect now", on the browser coming back online and on the tab being shown again, and says so politely."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, log_in
from tests.browser.test_pages import alice  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The next automatic try a minute away (the backoff's whole ceiling, jitter pinned to its top), so a page that
# connects again within seconds did so because of what the test did.
LONG_BACKOFF = "window.paperStream.backoff = {initialMs: 60000, maxMs: 60000}; Math.random = () => 1;"


def pass_websockets_through(page) -> list:
    """Route the page's WebSockets through the test to the real server, so the test can cut one as a server
    would; returns the routes, newest last."""
    routes: list = []

    def through(route) -> None:
        route.connect_to_server()
        routes.append(route)

    page.route_web_socket(re.compile(r".*/ws/.*"), through)
    return routes


def drop(page, routes: list) -> None:
    """Close the page's WebSocket as a restarting server does, and check the banner: what happened, when it
    tries again, and a way to try now."""
    routes[-1].close(code=1001, reason="going away")
    banner = page.locator("#conn-banner")
    expect(banner).to_be_visible()
    expect(page.locator("#conn-banner-text")).to_have_text("Live updates paused: the server is restarting.")
    expect(page.locator("#conn-banner-countdown")).to_have_text(re.compile(r"Trying again in (59|60) s\."))
    expect(page.locator("#conn-state")).to_have_text("reconnecting")


def test_a_drop_is_explained_and_retried_at_once_on_request_online_or_visible(page, browser_system, alice):  # noqa: F811
    routes = pass_websockets_through(page)
    log_in(page, browser_system, "alice", "pw-alice-123")
    expect(page.locator("#conn-state")).to_have_text("connected")
    expect(page.locator("#conn-banner")).to_be_hidden()
    text = page.locator("#conn-banner-text")
    assert text.get_attribute("role") == "status" and text.get_attribute("aria-live") == "polite"
    page.evaluate(LONG_BACKOFF)

    drop(page, routes)
    page.screenshot(path=SCREENSHOTS / "connection-banner.png", full_page=True)
    page.get_by_role("button", name="Reconnect now").click()
    expect(page.locator("#conn-state")).to_have_text("connected", timeout=10_000)
    expect(page.locator("#conn-banner")).to_be_hidden()

    drop(page, routes)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("#conn-state")).to_have_text("connected", timeout=10_000)

    drop(page, routes)
    assert page.evaluate("document.visibilityState") == "visible"
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#conn-state")).to_have_text("connected", timeout=10_000)
    expect(page.locator("#conn-banner")).to_be_hidden()
    # Connected: nothing to skip, so a click or an event starts no second connection.
    assert page.evaluate("window.paperStream.reconnectNow()") is False


def test_revoked_access_says_to_sign_in_and_offers_no_retry(page, browser_system, alice):  # noqa: F811
    log_in(page, browser_system, "alice", "pw-alice-123")
    expect(page.locator("#conn-state")).to_have_text("connected")
    alice.set_password("pw-alice-456")
    alice.save()  # a password change closes the user's connections with 4004
    expect(page.locator("#conn-banner-text")).to_have_text(
        "Live updates stopped: your access was withdrawn. Reload the page to sign in again.", timeout=15_000
    )
    expect(page.get_by_role("button", name="Reconnect now")).to_be_hidden()
    expect(page.locator("#conn-state")).to_have_text("offline")
