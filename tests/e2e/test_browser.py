"""End-to-end: the demo dashboard in a real headless Chromium (Debian's package).

Skipped with the reason where Chromium or Playwright is absent; in CI (``CI=true``)
their absence is an error, and ``.ci/run`` installs Chromium first.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _need(what: str | None, reason: str) -> None:
    if not what:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI must run the browser tests)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory, running_demo) -> Iterator[str]:
    """The demo dashboard served by `listenwell demo`, enriched by the real models."""
    with running_demo(tmp_path_factory.mktemp("e2e"), enrich=True) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _need(CHROMIUM, "Chromium not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(None, "playwright not installed")
        raise
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_overview_shows_demo_numbers(dashboard, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(dashboard)
    metric = page.get_by_test_id("stMetric").filter(has_text="Mentions").first
    metric.wait_for(timeout=90_000)
    value = metric.get_by_test_id("stMetricValue").inner_text()
    assert int(value.replace(",", "")) > 1000
    assert page.get_by_text("Brand:").first.is_visible()
    page.get_by_test_id("stPlotlyChart").first.wait_for(timeout=90_000)
    page.screenshot(path=str(tmp_path / "overview.png"))
    errors = page.get_by_test_id("stException").count()
    assert errors == 0


def test_hostile_search_input_is_harmless(dashboard, browser):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(dashboard + "/mentions")
    box = page.get_by_role("textbox", name="Text contains")
    box.wait_for(timeout=90_000)
    box.fill("<script>alert(1)</script>%' OR 1=1 --")
    box.press("Enter")
    page.get_by_text("No mentions match these filters.").wait_for(timeout=90_000)
    assert dialogs == []
    assert page.get_by_test_id("stException").count() == 0
