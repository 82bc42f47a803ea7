"""The API's browsable OpenAPI page in Chromium: every operation rendered from the project's own files, under the
Content Security Policy with no violation (the page fixture checks), nothing fetched from another origin, and an
operation tried from the page with the browser's session."""

import pytest
import requests
from playwright.sync_api import expect

from papers.models import Paper
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.realtime.test_consumer import _paper

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="pw-alice-123")


def operation_count(system) -> int:
    """The operations of the served OpenAPI document."""
    session = requests.Session()
    token = session.post(f"{system.base_url}/api/token/", json={"username": "alice", "password": "pw-alice-123"})
    headers = {"Authorization": f"Bearer {token.json()['access']}"}
    document = session.get(f"{system.base_url}/api/schema/?format=json", headers=headers).json()
    return sum(len(item) for item in document["paths"].values())


def test_the_api_page_renders_every_operation_from_local_files_under_the_policy(page, browser_system, alice):
    base = browser_system.base_url
    elsewhere: list[str] = []
    page.on("request", lambda request: request.url.startswith((base + "/", "data:")) or elsewhere.append(request.url))
    log_in(page, browser_system, "alice", "pw-alice-123")
    response = page.goto(f"{base}/api/schema/ui/")
    assert response.ok and "script-src 'self'" in response.headers["content-security-policy"]

    expect(page.locator(".opblock")).to_have_count(operation_count(browser_system), timeout=30_000)
    expect(page.locator(".info .title")).to_contain_text("Paper Pipeline API")
    listing = page.locator("#operations-papers-papers_list")
    listing.locator(".opblock-summary").click()
    listing.get_by_role("button", name="Try it out").click()
    listing.get_by_role("button", name="Execute").click()
    # The request goes out with the page's session cookie; an empty list of alice's papers comes back.
    status = listing.locator(".live-responses-table .response .response-col_status")
    expect(status).to_have_text("200")
    expect(listing.locator(".live-responses-table .microlight").first).to_contain_text('"count": 0')
    status.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "api-schema-ui.png"))
    assert elsewhere == [], elsewhere


def test_an_unsafe_method_tried_from_the_page_passes_the_csrf_check(page, browser_system, alice):
    paper = _paper(alice)
    log_in(page, browser_system, "alice", "pw-alice-123")
    page.goto(f"{browser_system.base_url}/api/schema/ui/")
    delete = page.locator("#operations-papers-papers_destroy")
    delete.locator(".opblock-summary").click()
    delete.get_by_role("button", name="Try it out").click()
    delete.locator("input[placeholder=id]").fill(str(paper.pk))
    delete.get_by_role("button", name="Execute").click()
    expect(delete.locator(".live-responses-table .response .response-col_status")).to_have_text("204")
    assert not Paper.objects.filter(pk=paper.pk).exists()
