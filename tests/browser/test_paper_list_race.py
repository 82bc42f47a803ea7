"""The paper list in real Chromium ends equal to the API: when many papers move fast at once, whatever order
the page's own fetches come back in, and when events never reached the page (published before its
subscription took effect, or lost before a reconnect). Screenshots land in test-artifacts/browser/."""

import json
import os
import time
from pathlib import Path

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


def fast_papers(tmp_path, corrupt: int = CORRUPT_PDFS, valid: int = VALID_PAPERS) -> list[str]:
    """Corrupt PDFs (they fail at once) and tiny valid papers (they complete in a moment), as files to pick."""
    paths = []
    for index in range(corrupt):
        path = tmp_path / f"corrupt-{index:02}.pdf"
        path.write_bytes(b"%PDF-" + os.urandom(64) + b"\nnot a pdf at all\n")
        paths.append(path)
    for index in range(valid):
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


def alice_api(system) -> requests.Session:
    """An API session with alice's token, as a script uses the API."""
    session = requests.Session()
    token = session.post(f"{system.base_url}/api/token/", json={"username": "alice", "password": "pw-alice-123"})
    session.headers["Authorization"] = f"Bearer {token.json()['access']}"
    return session


def poll_until(page, condition, what: str, timeout: float = 20, interval_ms: int = 50) -> None:
    """Poll a condition outside the page (the API, the test's own routes); Playwright serves the page's routes
    between polls."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting until {what}"
        page.wait_for_timeout(interval_ms)


def upload_by_api(api: requests.Session, system, paths: list[str]) -> None:
    """Upload files through the API, as a script does while the page is open."""
    for path in map(Path, paths):
        response = api.post(f"{system.base_url}/api/papers/", files={"file": (path.name, path.read_bytes())})
        assert response.status_code == 201, response.text


def settled_api_papers(page, system, count: int) -> dict[str, dict]:
    """Poll the API until the user has `count` papers, all final; return them by id."""
    session = alice_api(system)
    papers = {}

    def settled() -> bool:
        body = session.get(f"{system.base_url}/api/papers/", params={"limit": 200}).json()
        papers.clear()
        papers.update((paper["id"], paper) for paper in body["results"])
        return len(papers) == count and {paper["status"] for paper in papers.values()} <= FINAL

    poll_until(page, settled, f"{count} papers are final", timeout=SETTLE_SECONDS, interval_ms=250)
    return papers


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


class SocketTap:
    """A page WebSocket route between the page and Daphne: holds the page's subscription to topic `papers`,
    or drops paper events on their way to the page, while told to."""

    def __init__(self):
        self.hold_subscribe = True
        self.drop_paper_events = False
        self.held = []
        self.finals_dropped = set()  # papers whose final status_changed the page never got

    def __call__(self, ws):
        server = ws.connect_to_server()
        ws.on_message(lambda message: self.from_page(server, message))
        server.on_message(lambda message: self.from_server(ws, message))

    def from_page(self, server, message):
        if self.hold_subscribe and json.loads(message).get("topic") == "papers":
            self.held.append((server, message))
        else:
            server.send(message)

    def from_server(self, ws, message):
        event = json.loads(message)
        if not (self.drop_paper_events and "paper_id" in event and "event_type" in event):
            ws.send(message)
        elif event.get("new_status") in FINAL:
            self.finals_dropped.add(event["paper_id"])

    def release_subscribe(self) -> None:
        self.hold_subscribe = False
        for server, message in self.held:
            server.send(message)


def test_the_list_catches_up_with_the_api_on_subscribe_and_after_a_reconnect(page, browser_system, alice, tmp_path):
    tap = SocketTap()
    page.route_web_socket("**/ws/papers", tap)
    log_in(page, browser_system, "alice", "pw-alice-123")
    api = alice_api(browser_system)

    # Published after the page rendered, before its subscription took effect: never sent to it.
    poll_until(page, lambda: tap.held, "the page subscribes to topic papers")
    upload_by_api(api, browser_system, fast_papers(tmp_path, corrupt=2, valid=1))
    papers = settled_api_papers(page, browser_system, 3)
    tap.release_subscribe()
    expect(page.locator("#conn-state")).to_have_text("connected")
    page.wait_for_function(ROWS_MATCH, arg={i: p["status"] for i, p in papers.items()}, timeout=20_000)
    shown = set(papers)

    # Published while the page's socket lost them, then the socket drops: the reconnect brings them.
    tap.drop_paper_events = True
    upload_by_api(api, browser_system, fast_papers(tmp_path, corrupt=1, valid=1))
    papers = settled_api_papers(page, browser_system, 5)
    lost = papers.keys() - shown
    poll_until(page, lambda: lost <= tap.finals_dropped, "the page's socket lost the new papers' final events")
    tap.drop_paper_events = False
    page.evaluate("window.paperStream.socket.close()")
    page.wait_for_function(ROWS_MATCH, arg={i: p["status"] for i, p in papers.items()}, timeout=20_000)
    expect(page.locator("#conn-state")).to_have_text("connected")
    page.screenshot(path=SCREENSHOTS / "paper-list-caught-up.png", full_page=True)
