"""The paper list in real Chromium ends equal to the API when many papers move fast at once, whatever order
the page's own fetches come back in. Screenshots land in test-artifacts/browser/."""

import os
import time

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, log_in
from tests.conftest import SAMPLE_TEXT, make_pdf

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CORRUPT_PDFS = 12
VALID_PAPERS = 4
FINAL = {"completed", "failed", "cancelled"}
SETTLE_SECONDS = 120

ROWS_MATCH = """expected => {
  const rows = [...document.querySelectorAll("#paper-rows tr[data-paper-id]")];
  return rows.length === Object.keys(expected).length && rows.every(
    (row) => expected[row.dataset.paperId] === row.querySelector("[data-field=status]").textContent.trim());
}"""


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="pw-alice-123")


def fast_papers(tmp_path) -> list[str]:
    """Corrupt PDFs (they fail at once) and tiny valid papers (they complete in a moment), as files to pick."""
    paths = []
    for index in range(CORRUPT_PDFS):
        path = tmp_path / f"corrupt-{index:02}.pdf"
        path.write_bytes(b"%PDF-" + os.urandom(64) + b"\nnot a pdf at all\n")
        paths.append(path)
    for index in range(VALID_PAPERS):
        path = tmp_path / f"tiny-{index}.{'pdf' if index % 2 else 'txt'}"
        path.write_bytes(make_pdf(SAMPLE_TEXT) if index % 2 else SAMPLE_TEXT.encode())
        paths.append(path)
    return [str(path) for path in paths]


class HeldFetches:
    """A page route holding every GET the page makes with fetch() until released, then answering newest first.

    Each response is read from the server when the request is made, so an answer released late carries its
    paper's state of that earlier moment: what a slow response looks like to the page."""

    def __init__(self):
        self.held = []
        self.holding = True

    def __call__(self, route, request):
        if request.resource_type != "fetch" or request.method != "GET" or not self.holding:
            route.continue_()
            return
        self.held.append((route, route.fetch()))

    def release(self) -> int:
        """Answer everything held, newest first (so the stalest answers land last), stop holding; say how many."""
        self.holding = False
        held, self.held = self.held, []
        for route, response in reversed(held):
            route.fulfill(response=response)
        return len(held)


def settled_api_papers(page, system, count: int) -> dict[str, dict]:
    """Poll the API until the user has `count` papers, all final; return them by id."""
    session = requests.Session()
    token = session.post(f"{system.base_url}/api/token/", json={"username": "alice", "password": "pw-alice-123"})
    session.headers["Authorization"] = f"Bearer {token.json()['access']}"
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        body = session.get(f"{system.base_url}/api/papers/", params={"limit": 200}).json()
        papers = {paper["id"]: paper for paper in body["results"]}
        if len(papers) == count and {paper["status"] for paper in papers.values()} <= FINAL:
            return papers
        assert time.monotonic() < deadline, f"papers not final after {SETTLE_SECONDS} s: {papers}"
        page.wait_for_timeout(250)  # a poll interval that lets Playwright serve the page's routes meanwhile


def shown_rows(page) -> list[list]:
    """[paper id, status text, progress percent] of every row of the list, in page order."""
    return page.locator("#paper-rows tr[data-paper-id]").evaluate_all(
        """rows => rows.map(r => [r.dataset.paperId, r.querySelector('[data-field=status]').textContent.trim(),
                                  Number(r.querySelector('[data-field=progress]').getAttribute('aria-valuenow'))])"""
    )


@pytest.mark.parametrize("responses", ["as-they-come", "held-then-newest-first"])
def test_the_list_ends_equal_to_the_api_when_many_papers_move_fast(page, browser_system, alice, tmp_path, responses):
    log_in(page, browser_system, "alice", "pw-alice-123")
    expect(page.locator("#conn-state")).to_have_text("connected")
    held = HeldFetches()
    if responses == "held-then-newest-first":
        page.route("**/*", held)

    files = fast_papers(tmp_path)
    page.set_input_files("#id_file", files)
    page.get_by_role("button", name="Upload").click()
    papers = settled_api_papers(page, browser_system, len(files))
    expected = {paper_id: paper["status"] for paper_id, paper in papers.items()}
    assert list(expected.values()).count("failed") == CORRUPT_PDFS, expected
    if responses == "held-then-newest-first":
        assert held.release() >= len(files), "every paper's first fetch was held and answered out of order"

    try:
        page.wait_for_function(ROWS_MATCH, arg=expected, timeout=20_000)
    except PlaywrightTimeoutError:
        pass  # the assertions below say what differs
    rows = shown_rows(page)
    page.screenshot(path=SCREENSHOTS / f"paper-list-fast-papers-{responses}.png", full_page=True)
    assert sorted(paper_id for paper_id, _, _ in rows) == sorted(expected), "exactly one row per paper"
    assert {paper_id: status for paper_id, status, _ in rows} == expected
    for paper_id, _, percent in rows:
        assert abs(percent - papers[paper_id]["progress"] * 100) <= 1, (papers[paper_id], percent)
