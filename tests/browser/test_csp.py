"""Every page, the admin's included, works in Chromium under the Content Security Policy and breaks none of it."""

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import csp_violations, log_in
from tests.conftest import SAMPLE_TEXT

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_user(
        username="root", password="pw-root-123", is_staff=True, is_superuser=True
    )


def upload_paper(system) -> dict:
    """A paper uploaded through the API, as a script would."""
    session = requests.Session()
    token = session.post(f"{system.base_url}/api/token/", json={"username": "root", "password": "pw-root-123"})
    headers = {"Authorization": f"Bearer {token.json()['access']}"}
    files = {"file": ("csp-check.txt", SAMPLE_TEXT.encode(), "text/plain")}
    return session.post(f"{system.base_url}/api/papers/", headers=headers, files=files).json()


def visit(page, url: str) -> None:
    """Open a page and check it came with the policy."""
    response = page.goto(url)
    assert response.ok, (url, response.status)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy, policy


def test_pages_and_admin_run_under_the_policy_without_a_violation(page, browser_system, root):
    violations = csp_violations(page)  # also checked by the page fixture; asserted here on every step
    base = browser_system.base_url
    paper = upload_paper(browser_system)

    visit(page, f"{base}/login/")
    log_in(page, browser_system, "root", "pw-root-123")
    expect(page.locator("#conn-state")).to_have_text("connected")  # the WebSocket passes connect-src
    row = page.locator(f"#paper-rows tr[data-paper-id='{paper['id']}']")
    expect(row.locator("[data-field=status]")).to_have_text("completed", timeout=120_000)
    # The bar's width is set from script now that the template carries no inline style.
    expect(row.locator("[data-field=progress] > span")).to_have_attribute("style", re.compile("width: 100%"))
    assert violations == []

    visit(page, f"{base}/papers/{paper['id']}/")
    expect(page.locator("#conn-state")).to_have_text("connected")
    expect(page.locator("#overall > span")).to_have_attribute("style", re.compile("width: 100%"))
    expect(page.locator("#status")).to_have_text("completed")

    for path in ("/admin/", "/admin/papers/paper/", f"/admin/papers/paper/{paper['id']}/change/",
                 "/admin/auth/user/", "/admin/auth/user/add/"):
        visit(page, f"{base}{path}")
        expect(page.locator("#content")).to_be_visible()
    visit(page, f"{base}/admin/auth/user/")
    page.locator("#action-toggle").check()  # the admin's own actions.js, loaded under the policy
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    assert violations == []
