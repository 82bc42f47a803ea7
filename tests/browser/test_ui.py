"""The pages as people use them, in real Chromium: actions reflected live on every page of the user, phone width
and dark mode, a live page read the same after a reload, and errors shown as alerts that say what happened.
Screenshots land in test-artifacts/browser/."""

import re

import pytest
import requests
from playwright.sync_api import expect

from papers import display
from tests.browser.conftest import SCREENSHOTS, csp_violations, log_in
from tests.conftest import SAMPLE_TEXT
from tests.e2e.slow_extractor import GATE_MARKER, MARKER

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAPER_TIMEOUT = 120_000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="pw-alice-123")


def api_session(system) -> requests.Session:
    session = requests.Session()
    token = session.post(f"{system.base_url}/api/token/", json={"username": "alice", "password": "pw-alice-123"})
    session.headers["Authorization"] = f"Bearer {token.json()['access']}"
    return session


def upload_as_alice(system, name: str, text: str) -> str:
    """Upload a text paper through the API, as a script would, while pages watch; its id."""
    files = {"file": (name, text.encode(), "text/plain")}
    response = api_session(system).post(f"{system.base_url}/api/papers/", files=files)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_completed(system, page, paper_id: str) -> None:
    """Watch a paper complete on the list page."""
    row = page.locator(f"#paper-rows tr[data-paper-id='{paper_id}']")
    expect(row.locator("[data-field=status]")).to_have_text("completed", timeout=PAPER_TIMEOUT)


def open_page(context, url: str):
    """Another page of the same user (the same session), connected."""
    other = context.new_page()
    other.goto(url)
    expect(other.locator("#conn-state")).to_have_text("connected")
    return other


def test_cancel_reprocess_download_and_delete_are_reflected_on_every_page(page, browser_system, alice, gate_file):
    base = browser_system.base_url
    log_in(page, browser_system, "alice", "pw-alice-123")
    expect(page.locator("#conn-state")).to_have_text("connected")
    paper_id = upload_as_alice(browser_system, "gated.txt", GATE_MARKER + "\n" + SAMPLE_TEXT)
    row = page.locator(f"#paper-rows tr[data-paper-id='{paper_id}']")
    expect(row.locator("[data-field=status]")).to_have_text("processing", timeout=30_000)  # held at the gate
    detail = open_page(page.context, f"{base}/papers/{paper_id}/")
    expect(detail.locator("#paper .actions").get_by_role("button", name="Reprocess")).to_be_hidden()

    row.get_by_role("button", name="Cancel").click()  # on the list: the progress page follows
    expect(detail.locator("#status")).to_have_text("cancelled")
    expect(detail.locator("#paper .actions").get_by_role("button", name="Cancel")).to_be_hidden()
    expect(row.locator("[data-field=status]")).to_have_text("cancelled")
    expect(row.get_by_role("button", name="Reprocess")).to_be_visible()
    gate_file.touch()  # let the worker go (it finds the paper cancelled), and the reprocessed paper through
    try:
        with detail.expect_download() as download:  # through the API's authorized download
            detail.locator("#paper .actions [data-action=download]").click()
        assert download.value.url == f"{base}/api/papers/{paper_id}/file/"
        assert download.value.suggested_filename == "gated.txt"

        detail.locator("#paper .actions").get_by_role("button", name="Reprocess").click()  # here: the list follows
        expect(row.locator("[data-field=status]")).to_have_text("completed", timeout=PAPER_TIMEOUT)
        expect(detail.locator("#status")).to_have_text("completed")
    finally:
        gate_file.unlink(missing_ok=True)
    page.screenshot(path=SCREENSHOTS / "ui-list-actions.png", full_page=True)

    watcher = open_page(page.context, f"{base}/papers/{paper_id}/")  # a second progress page of the paper
    dialog = detail.get_by_role("dialog")
    detail.locator("#paper .actions").get_by_role("button", name="Delete").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("gated")
    detail.screenshot(path=SCREENSHOTS / "ui-delete-confirmation.png")
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    assert api_session(browser_system).get(f"{base}/api/papers/{paper_id}/").status_code == 200

    detail.locator("#paper .actions").get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    detail.wait_for_url(f"{base}/")
    expect(row).to_have_count(0)  # the list page dropped it (paper_deleted)
    expect(watcher.get_by_role("alert").filter(has_text="This paper was deleted")).to_be_visible()
    expect(watcher.locator("#paper .actions")).to_be_hidden()
    assert api_session(browser_system).get(f"{base}/api/papers/{paper_id}/").status_code == 404


def test_errors_are_alerts_that_say_what_happened(page, browser_system, alice):
    base = browser_system.base_url
    log_in(page, browser_system, "alice", "pw-alice-123")
    expect(page.locator("#conn-state")).to_have_text("connected")
    failing = upload_as_alice(browser_system, "blank.txt", "   \n\n   \n")
    done = upload_as_alice(browser_system, "done.txt", SAMPLE_TEXT)
    row = page.locator(f"#paper-rows tr[data-paper-id='{failing}']")
    expect(row.locator("[data-field=status]")).to_have_text("failed", timeout=PAPER_TIMEOUT)
    expect(row.locator("[data-field=why]")).to_have_text("The document contains no text to extract.")
    wait_completed(browser_system, page, done)

    # A page that still shows a paper processing offers Cancel; the server refuses, and the page says why.
    page.locator(f"#paper-rows tr[data-paper-id='{done}']").evaluate("row => { row.dataset.status = 'processing'; }")
    page.locator(f"#paper-rows tr[data-paper-id='{done}']").get_by_role("button", name="Cancel").click()
    alert = page.locator("#action-error")
    expect(alert).to_have_text("Only queued or processing papers can be cancelled.")
    assert alert.get_attribute("role") == "alert"
    assert alert.evaluate("node => getComputedStyle(node).borderLeftStyle") == "solid"  # styled, not grey text
    page.screenshot(path=SCREENSHOTS / "ui-errors-list.png", full_page=True)

    page.reload()  # the row says why after a reload too
    expect(page.locator(f"#paper-rows tr[data-paper-id='{failing}'] [data-field=why]")).to_have_text(
        "The document contains no text to extract.")
    page.goto(f"{base}/papers/{failing}/")
    panel = page.get_by_role("alert").filter(has_text="The document contains no text to extract.")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("empty_document")
    page.screenshot(path=SCREENSHOTS / "ui-errors-detail.png", full_page=True)


def test_the_system_panel_shows_figures_at_once(page, browser, browser_system, alice):
    log_in(page, browser_system, "alice", "pw-alice-123")
    expect(page.locator("[data-stat=active_workers]")).not_to_have_text("–", timeout=15_000)  # a first broadcast
    context = browser.new_context(java_script_enabled=False)  # what the server renders, before anything live
    static = context.new_page()
    log_in(static, browser_system, "alice", "pw-alice-123")
    for stat in ("queue_size", "active_workers", "processing_rate", "system_load"):
        assert re.fullmatch(r"\d+(\.\d+)?", static.locator(f"[data-stat={stat}]").text_content()), stat
    context.close()


def region_texts(page) -> dict[str, str]:
    """What a reader sees in the regions a live page changes."""
    return page.evaluate("""() => Object.fromEntries(["#paper", "#paper-rows"]
        .filter((s) => document.querySelector(s)).map((s) => [s, document.querySelector(s).innerText]))""")


def test_a_live_page_reads_the_same_after_a_reload(page, browser_system, alice):
    base = browser_system.base_url
    log_in(page, browser_system, "alice", "pw-alice-123")
    expect(page.locator("#conn-state")).to_have_text("connected")
    # The browser's formatter rounds and labels as the server's (papers/display.py) does.
    shown = page.evaluate("""import('/static/paperpipeline/format.js').then((f) => [f.confidenceText(0.855),
        f.percentText(0.355), f.stepLabel('text_extraction', 'processing'), f.stepLabel('text_extraction', 'completed'),
        f.errorText('empty_document')])""")
    assert shown == [display.confidence_text(0.855), display.percent_text(0.355),
                     display.step_label("text_extraction", "processing"),
                     display.step_label("text_extraction", "completed"), display.error_text("empty_document")]
    assert shown[:2] == ["0.86", "36%"]
    paper_id = upload_as_alice(browser_system, "live.txt", MARKER + "\n" + SAMPLE_TEXT)
    detail = open_page(page.context, f"{base}/papers/{paper_id}/")
    expect(detail.locator("#step")).to_have_text("Entity extraction", timeout=30_000)
    expect(detail.locator("#eta")).to_have_text(re.compile(r"\d.*\S"))  # the viewer's time, with its zone
    expect(detail.locator("#status")).to_have_text("completed", timeout=PAPER_TIMEOUT)
    expect(detail.locator("#step")).to_have_text("—")  # a finished paper has no current step
    wait_completed(browser_system, page, paper_id)
    assert detail.locator("[data-relationship-id]").count() > 0
    confidences = detail.locator("#paper .conf").all_text_contents()
    assert confidences and all(re.fullmatch(r"\d\.\d\d", c) for c in confidences)
    live = {**region_texts(page), **region_texts(detail)}
    page.reload()
    detail.reload()
    expect(detail.locator("#conn-state")).to_have_text("connected")
    assert {**region_texts(page), **region_texts(detail)} == live


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_width_and_dark_mode_fit_without_horizontal_scroll(browser, browser_system, alice, scheme):
    base = browser_system.base_url
    paper_id = upload_as_alice(browser_system, "a-rather-long-file-name-for-a-phone-screen.txt", SAMPLE_TEXT)
    backgrounds = {}
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport, color_scheme=scheme)
        page = context.new_page()
        violations = csp_violations(page)
        log_in(page, browser_system, "alice", "pw-alice-123")
        wait_completed(browser_system, page, paper_id)
        assert fits(page), f"the list scrolls sideways at {viewport['width']} px"
        page.screenshot(path=SCREENSHOTS / f"ui-list-{name}-{scheme}.png", full_page=True)
        page.goto(f"{base}/papers/{paper_id}/")
        expect(page.locator("#status")).to_have_text("completed")
        assert page.locator("[data-entity-id]").count() > 0 and page.locator("[data-relationship-id]").count() > 0
        assert fits(page), f"the progress page scrolls sideways at {viewport['width']} px"
        page.screenshot(path=SCREENSHOTS / f"ui-detail-{name}-{scheme}.png", full_page=True)
        backgrounds[name] = page.evaluate("getComputedStyle(document.body).backgroundColor")
        context.close()
        assert violations == []
    light, dark = "rgb(245, 246, 250)", "rgb(16, 20, 28)"
    assert set(backgrounds.values()) == {light if scheme == "light" else dark}


def fits(page) -> bool:
    return page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
