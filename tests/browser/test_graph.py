"""The paper page's graph, filled in live with each relationship's evidence on hover and focus, and the library
page of models evaluated on datasets, in real Chromium under the Content Security Policy."""

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, log_in
from tests.conftest import SAMPLE_TEXT
from tests.e2e.slow_extractor import GATE_MARKER

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAPER_TIMEOUT = 120_000
GRAPH_COUNTS = "() => [window.paperGraph.nodes().length, window.paperGraph.edges().length]"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="pw-alice-123")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="pw-bob-123")


def api_session(system, username: str, password: str) -> requests.Session:
    session = requests.Session()
    token = session.post(f"{system.base_url}/api/token/", json={"username": username, "password": password})
    session.headers["Authorization"] = f"Bearer {token.json()['access']}"
    return session


def upload(session, system, name: str, text: str) -> dict:
    files = {"file": (name, text.encode(), "text/plain")}
    return session.post(f"{system.base_url}/api/papers/", files=files).json()


def edge_point(page, relationship_id: str) -> tuple[float, float]:
    """Where the relationship's arrow is drawn, in page coordinates."""
    box = page.locator("#graph").bounding_box()
    point = page.evaluate("id => window.paperGraph.getElementById(id).renderedMidpoint()", relationship_id)
    return box["x"] + point["x"], box["y"] + point["y"]


def test_the_graph_fills_in_live_and_shows_each_relationships_evidence(page, browser_system, alice, gate_file):
    session = api_session(browser_system, "alice", "pw-alice-123")
    paper = upload(session, browser_system, "gated-graph.txt", f"{GATE_MARKER}\n{SAMPLE_TEXT}")
    log_in(page, browser_system, "alice", "pw-alice-123")
    page.goto(f"{browser_system.base_url}/papers/{paper['id']}/")
    # Held at the gate inside entity extraction: nothing extracted yet, so the graph is empty.
    expect(page.locator("#step")).to_have_text("Entity extraction", timeout=30_000)
    expect(page.locator("#conn-state")).to_have_text("connected")
    assert page.evaluate(GRAPH_COUNTS) == [0, 0]
    expect(page.locator("#graph-edges button")).to_have_count(0)

    gate_file.touch()
    try:
        expect(page.locator("#status")).to_have_text("completed", timeout=PAPER_TIMEOUT)
    finally:
        gate_file.unlink(missing_ok=True)
    base = f"{browser_system.base_url}/api/papers/{paper['id']}"
    entities = session.get(f"{base}/entities/").json()
    relationships = session.get(f"{base}/relationships/").json()
    assert relationships, "the sample paper has relationships"
    # Every node and arrow came from live events: the page was never reloaded.
    page.wait_for_function(f"({GRAPH_COUNTS})().join() === '{len(entities)},{len(relationships)}'")
    assert sorted(page.evaluate("window.paperGraph.nodes().map(n => n.id())")) == sorted(e["id"] for e in entities)
    assert sorted(page.evaluate("window.paperGraph.edges().map(e => e.id())")) == sorted(r["id"] for r in relationships)
    buttons = page.locator("#graph-edges button")
    expect(buttons).to_have_count(len(relationships))
    expect(page.locator("#relationships tr")).to_have_count(len(relationships))  # the table fills in beside it
    expect(page.locator("#relationship-count")).to_have_text(f"({len(relationships)})")

    # Keyboard: focusing a relationship in the list shows its evidence (read from the API) and marks its arrow.
    first = relationships[0]
    buttons.and_(page.locator(f"[data-edge-id='{first['id']}']")).focus()
    expect(page.locator("#graph-evidence")).to_contain_text(first["evidence"])
    expect(page.locator("#graph-evidence")).to_contain_text(f"{first['source_name']} ")
    assert page.evaluate("window.paperGraph.edges('.active').map(e => e.id())") == [first["id"]]

    # Pointer: hovering an arrow on the canvas shows that relationship's evidence.
    last = relationships[-1]
    page.mouse.move(*edge_point(page, last["id"]))
    expect(page.locator("#graph-evidence")).to_contain_text(last["evidence"])
    expect(buttons.and_(page.locator(f"[data-edge-id='{last['id']}']"))).to_have_class(re.compile("active"))
    page.screenshot(path=SCREENSHOTS / "paper-graph-live.png", full_page=True)

    # Reloaded, the graph starts from the page's own data, evidence included, with no event to wait for.
    page.reload()
    assert page.evaluate(GRAPH_COUNTS) == [len(entities), len(relationships)]
    page.locator(f"#graph-edges button[data-edge-id='{first['id']}']").focus()
    expect(page.locator("#graph-evidence")).to_contain_text(first["evidence"])


def completed_in_list(page, system, username: str, paper_id: str) -> None:
    """Log in as the paper's owner and wait until the live list says it completed."""
    log_in(page, system, username, f"pw-{username}-123")
    row = page.locator(f"#paper-rows tr[data-paper-id='{paper_id}']")
    expect(row.locator("[data-field=status]")).to_have_text("completed", timeout=PAPER_TIMEOUT)


def test_the_library_lists_a_processed_papers_models_and_datasets_with_links(browser, page, browser_system, alice, bob):
    mine = upload(api_session(browser_system, "alice", "pw-alice-123"), browser_system, "mine.txt", SAMPLE_TEXT)
    theirs = upload(api_session(browser_system, "bob", "pw-bob-123"), browser_system, "theirs.txt", SAMPLE_TEXT)
    bobs = browser.new_context()
    completed_in_list(bobs.new_page(), browser_system, "bob", theirs["id"])  # the same pairs, in bob's library
    bobs.close()
    completed_in_list(page, browser_system, "alice", mine["id"])

    page.get_by_role("link", name="Library").click()
    expect(page.get_by_role("heading", name=re.compile("Library"))).to_be_visible()
    pair = page.locator("#evaluations tr[data-model='NovaNet'][data-dataset='SQuAD']")
    expect(pair.locator("[data-field=count]")).to_have_text("1")
    expect(page.locator(f"#evaluations a[data-paper-id='{theirs['id']}']")).to_have_count(0)
    page.screenshot(path=SCREENSHOTS / "library.png", full_page=True)
    pair.get_by_role("link", name="mine").click()
    expect(page.locator("#paper")).to_have_attribute("data-paper-id", mine["id"])


def test_the_graph_card_fits_a_phone(page, browser_system, alice):
    session = api_session(browser_system, "alice", "pw-alice-123")
    paper = upload(session, browser_system, "phone-graph.txt", SAMPLE_TEXT)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, browser_system, "alice", "pw-alice-123")
    page.goto(f"{browser_system.base_url}/papers/{paper['id']}/")
    expect(page.locator("#status")).to_have_text("completed", timeout=PAPER_TIMEOUT)
    card = page.locator("section").filter(has=page.locator("#graph"))
    expect(page.locator("#graph-edges button").first).to_be_visible()
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    card.screenshot(path=SCREENSHOTS / "paper-graph-390.png")
