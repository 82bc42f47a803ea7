"""The pages in real Chromium: upload, live list and progress page, recovery after a cut socket or a Daphne
restart, and the live admin. Screenshots land in test-artifacts/browser/."""

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, log_in
from tests.conftest import SAMPLE_TEXT, make_pdf, papers_dir
from tests.e2e.slow_extractor import MARKER

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAPER_TIMEOUT = 120_000


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="pw-alice-123")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        username="root", password="pw-root-123", is_staff=True, is_superuser=True
    )


def slow_pdf(tmp_path, name="novanet-slow.pdf"):
    path = tmp_path / name
    path.write_bytes(make_pdf(MARKER + "\n" + SAMPLE_TEXT * 3))
    return path


def admin_log_in(page, system) -> None:
    """Log in through the admin's own login form."""
    page.goto(f"{system.base_url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-root-123")
    page.click("input[type=submit]")


def upload_slow_paper_as_alice(system, tmp_path) -> dict:
    """Upload through the API, as a script would, while a page watches."""
    session = requests.Session()
    token = session.post(f"{system.base_url}/api/token/", json={"username": "alice", "password": "pw-alice-123"})
    headers = {"Authorization": f"Bearer {token.json()['access']}"}
    files = {"file": ("slow.pdf", slow_pdf(tmp_path).read_bytes())}
    return session.post(f"{system.base_url}/api/papers/", headers=headers, files=files).json()


def api_entities(system, paper_id: str) -> list[str]:
    session = requests.Session()
    token = session.post(f"{system.base_url}/api/token/", json={"username": "alice", "password": "pw-alice-123"})
    headers = {"Authorization": f"Bearer {token.json()['access']}"}
    entities = session.get(f"{system.base_url}/api/papers/{paper_id}/entities/", headers=headers).json()
    return sorted(e["id"] for e in entities)


def shown_entities(page) -> list[str]:
    return sorted(page.locator("[data-entity-id]").evaluate_all("rows => rows.map(r => r.dataset.entityId)"))


def open_detail_while_processing(page, system, tmp_path):
    """Upload a slow paper from the list page, then follow it to its progress page."""
    log_in(page, system, "alice", "pw-alice-123")
    page.set_input_files("#id_file", str(slow_pdf(tmp_path)))
    page.get_by_role("button", name="Upload").click()
    link = page.get_by_role("link", name="novanet-slow")
    expect(link).to_be_visible(timeout=20_000)
    link.click()
    expect(page.locator("#status")).to_have_text(re.compile("queued|processing"), timeout=20_000)
    # The server renders the step as the script does: wait for the script (its socket) before relying on it.
    expect(page.locator("#conn-state")).to_have_text("connected")
    return page.locator("#paper").get_attribute("data-paper-id")


def test_upload_several_papers_and_watch_them_complete_live(page, browser_system, alice, tmp_path):
    log_in(page, browser_system, "alice", "pw-alice-123")
    expect(page.locator("#conn-state")).to_have_text("connected")
    page.set_input_files("#id_file", [str(papers_dir() / "LayoutLM.pdf"), str(slow_pdf(tmp_path))])
    page.get_by_role("button", name="Upload").click()
    rows = page.locator("#paper-rows tr[data-paper-id]")
    expect(rows).to_have_count(2, timeout=20_000)
    for row in (rows.nth(0), rows.nth(1)):
        expect(row.locator("[data-field=status]")).to_have_text("completed", timeout=PAPER_TIMEOUT)
        expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("[data-stat=active_workers]")).not_to_have_text("–", timeout=15_000)
    page.screenshot(path=SCREENSHOTS / "paper-list.png", full_page=True)

    page.get_by_role("link", name="LayoutLM").click()
    expect(page.locator("#status")).to_have_text("completed")
    expect(page.locator("tbody[data-entity-type=MODEL]")).to_contain_text("LayoutLM")
    expect(page.locator("tbody[data-entity-type=DATASET]")).to_contain_text("FUNSD")
    expect(page.locator("#relationships tr").first).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "paper-detail-layoutlm.png", full_page=True)


def test_progress_page_fills_live_from_start_to_finish(page, browser_system, alice, tmp_path):
    paper_id = open_detail_while_processing(page, browser_system, tmp_path)
    expect(page.locator("#step")).to_have_text("Entity extraction", timeout=30_000)
    page.screenshot(path=SCREENSHOTS / "paper-detail-processing.png", full_page=True)
    expect(page.locator("#overall")).to_have_attribute("aria-valuenow", "100", timeout=PAPER_TIMEOUT)
    expect(page.locator("#status")).to_have_text("completed")
    expect(page.locator("#timeline li")).to_have_count(3)
    assert shown_entities(page) == api_entities(browser_system, paper_id)


def test_a_cut_websocket_recovers_with_no_entity_missing_or_doubled(page, browser_system, alice, tmp_path):
    paper_id = open_detail_while_processing(page, browser_system, tmp_path)
    expect(page.locator("#step")).to_have_text("Entity extraction", timeout=30_000)
    page.evaluate("window.paperStream.socket.close()")
    expect(page.locator("#conn-state")).to_have_text("reconnecting")
    expect(page.locator("#conn-state")).to_have_text("connected", timeout=20_000)
    expect(page.locator("#status")).to_have_text("completed", timeout=PAPER_TIMEOUT)
    assert shown_entities(page) == api_entities(browser_system, paper_id)


def test_a_daphne_restart_mid_paper_is_survived(page, browser_system, alice, tmp_path):
    paper_id = open_detail_while_processing(page, browser_system, tmp_path)
    expect(page.locator("#step")).to_have_text("Entity extraction", timeout=30_000)
    browser_system.restart("browser-daphne")
    expect(page.locator("#conn-state")).to_have_text(re.compile("reconnecting|offline"), timeout=10_000)
    page.screenshot(path=SCREENSHOTS / "paper-detail-reconnecting.png", full_page=True)
    expect(page.locator("#conn-state")).to_have_text("connected", timeout=30_000)
    expect(page.locator("#status")).to_have_text("completed", timeout=PAPER_TIMEOUT)
    assert shown_entities(page) == api_entities(browser_system, paper_id)
    page.screenshot(path=SCREENSHOTS / "paper-detail-after-restart.png", full_page=True)


def test_admin_changelist_shows_live_status(page, browser_system, alice, staff, tmp_path):
    admin_log_in(page, browser_system)
    paper = upload_slow_paper_as_alice(browser_system, tmp_path)
    page.goto(f"{browser_system.base_url}/admin/papers/paper/")
    row = page.locator(f"input.action-select[value='{paper['id']}']").locator("xpath=ancestor::tr")
    expect(row.locator(".field-status")).to_have_text("Completed", timeout=PAPER_TIMEOUT)
    expect(row.locator(".field-progress_percent")).to_have_text("100%")
    page.screenshot(path=SCREENSHOTS / "admin-changelist.png", full_page=True)


def test_the_list_works_without_javascript(browser, browser_system, alice, tmp_path):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, browser_system, "alice", "pw-alice-123")
    page.set_input_files("#id_file", str(slow_pdf(tmp_path, "plain-upload.pdf")))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".messages")).to_contain_text("plain-upload.pdf uploaded and queued")
    expect(page.get_by_role("link", name="plain-upload")).to_be_visible()
    context.close()


def test_admin_change_page_shows_live_progress(page, browser_system, alice, staff, tmp_path):
    admin_log_in(page, browser_system)
    paper = upload_slow_paper_as_alice(browser_system, tmp_path)
    page.goto(f"{browser_system.base_url}/admin/papers/paper/{paper['id']}/change/")
    expect(page.locator(".field-step .readonly")).to_have_text("Entity extraction", timeout=30_000)
    expect(page.locator(".field-status .readonly")).to_have_text("Completed", timeout=PAPER_TIMEOUT)
    expect(page.locator(".field-progress_percent .readonly")).to_have_text("100%")
    expect(page.locator(".field-step .readonly")).to_have_text("—")  # a finished paper has no current step
    page.screenshot(path=SCREENSHOTS / "admin-change-page.png", full_page=True)


def test_admin_changelist_adds_papers_uploaded_after_it_opened_and_shows_its_connection(
    page, browser_system, alice, staff, tmp_path
):
    admin_log_in(page, browser_system)
    upload_slow_paper_as_alice(browser_system, tmp_path)  # the changelist has a table to add to
    page.goto(f"{browser_system.base_url}/admin/papers/paper/")
    expect(page.locator("#conn-state")).to_have_text("connected")
    shown_before = page.locator("#result_list tbody tr").count()
    assert shown_before >= 1
    paper = upload_slow_paper_as_alice(browser_system, tmp_path)
    row = page.locator(f"input.action-select[value='{paper['id']}']").locator("xpath=ancestor::tr")
    expect(row).to_have_count(1, timeout=15_000)  # appeared without a reload
    assert row.evaluate("r => r.classList.contains('live-added')")
    expect(row.locator(".field-status")).to_have_text("Completed", timeout=PAPER_TIMEOUT)  # and stays live
    assert page.locator("#result_list tbody tr").count() == shown_before + 1
    expect(page.locator(".paginator")).to_contain_text(f"{shown_before + 1} papers")
    page.screenshot(path=SCREENSHOTS / "admin-changelist-live-added.png", full_page=True)
