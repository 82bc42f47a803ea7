"""Browser fixtures: Debian's Chromium driven by Playwright (never a downloaded browser), against the live system."""

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.conftest import running_system

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


@pytest.fixture(scope="package")
def gate_file(tmp_path_factory) -> Path:
    """The file that lets GATED-PAPER papers past entity extraction once a test creates it."""
    return tmp_path_factory.mktemp("browser-gate") / "open"


@pytest.fixture(scope="package")
def browser_system(django_db_setup, gate_file):
    """The whole system as `make run` starts it, for the browser tests."""
    with running_system(redis_url=os.environ["REDIS_URL"], name="browser-", E2E_GATE_FILE=str(gate_file)) as system:
        yield system


@pytest.fixture(scope="package")
def browser():
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Playwright's sync API keeps an event loop in this thread; the tests' own ORM calls stay synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        yield chromium
        chromium.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser):
    """A page of its own; the test fails if the Content Security Policy blocked anything on it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    violations = csp_violations(page)
    yield page
    context.close()
    assert violations == [], violations


def csp_violations(page) -> list[str]:
    """The Content Security Policy violations Chromium reports on the page's console, as they come."""
    violations: list[str] = []
    page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))
    return violations


def log_in(page, system, username: str, password: str) -> None:
    """Log in through the real login form."""
    page.goto(f"{system.base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{system.base_url}/")
