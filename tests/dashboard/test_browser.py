"""End to end in a real browser: Debian Chromium driven by Playwright against a running
dashboard server on loopback. Screenshots of every page land in ``CHURNOPS_SCREENSHOTS``
(default: the test's temporary folder) — `make screenshots` refreshes docs/screenshots/."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from churnops.batch.report import score_text
from churnops.batch.risk import RiskFilter, risk_export
from churnops.dashboard import launch
from tests.conftest import free_port
from tests.dashboard.conftest import Seeded

pytestmark = pytest.mark.integration
# Read at import: the suite's autouse fixture clears CHURNOPS_* variables for each test.
SCREENSHOTS = os.environ.get("CHURNOPS_SCREENSHOTS")
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(telco_store: Seeded) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = launch.start(telco_store.settings, "127.0.0.1", port)
    try:
        assert launch.wait_ready(url, process, timeout=90), "the dashboard did not start"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(SCREENSHOTS).resolve() if SCREENSHOTS else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def metric(page: Any, label: str) -> str:
    card = page.get_by_test_id("stMetric").filter(has_text=label).first
    return card.get_by_test_id("stMetricValue").inner_text().strip()


def field(page: Any, label: str) -> Any:
    """A Streamlit text or number input by its label (help icons share the label text)."""
    return page.locator(f'input[aria-label="{label}"]')


def go_to(page: Any, title: str, heading: str, charts: bool = True) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
    settle(page, charts)


def settle(page: Any, charts: bool = True) -> None:
    """Wait until Streamlit finished the rerun and drew every element (no placeholders).

    A page that shows data ends with charts, so a drawn chart means its script got to
    the end (the status widget may not have appeared yet when the wait starts).
    """
    page.wait_for_timeout(300)
    if charts:
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stSkeleton\"]')"
        " && !document.querySelector('[data-stale=\"true\"]')",
        timeout=60_000,
    )
    page.wait_for_timeout(500)  # charts draw after their element appears


def test_a_manager_signs_in_filters_exports_and_plans(
    browser: Any, server: str, telco_store: Seeded, shots: Path
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server)
    field(page, "API key").fill(telco_store.keys["analyst"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Customers at risk").wait_for()
    settle(page)
    page.screenshot(path=shots / "1-at-risk.png", full_page=True)

    # Filter the risk list on a segment; the list and its CSV follow.
    page.get_by_test_id("stSelectbox").filter(has_text="contract").click()
    page.get_by_role("option", name="Month-to-month").click()
    settle(page)
    matching = page.get_by_text(re.compile(r"customers match")).inner_text()
    expected = list(
        risk_export(telco_store.settings, None, RiskFilter({"contract": "Month-to-month"}))
    )
    assert f"{len(expected):,} customers match" in matching
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("Download CSV")).click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["customer_id"] for r in rows] == [e["customer_id"] for e in expected]
    assert {r["contract"] for r in rows} == {"Month-to-month"}
    assert [round(float(r["score"]), 6) for r in rows] == [round(e["score"], 6) for e in expected]

    go_to(page, "Customer", "Customer", charts=False)  # no customer chosen yet
    field(page, "Customer id").fill(expected[0]["customer_id"])
    page.keyboard.press("Enter")
    page.get_by_test_id("stMetric").filter(has_text="Churn score").wait_for()
    settle(page)
    assert metric(page, "Churn score") == score_text(expected[0]["score"])
    page.screenshot(path=shots / "2-customer.png", full_page=True)

    go_to(page, "Campaign planner", "Campaign planner")
    page.get_by_text("Constant", exact=True).click()
    settle(page)
    before = metric(page, "Customers to contact")
    budget = field(page, "Budget")
    budget.fill("100")
    budget.press("Enter")
    settle(page)
    after = metric(page, "Customers to contact")
    assert before != after
    assert after == "10"
    page.screenshot(path=shots / "3-campaign.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("Download the contact list")).click()
    contacts = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(contacts) == 10

    go_to(page, "Model", "Model")
    page.screenshot(path=shots / "4-model.png", full_page=True)
    go_to(page, "Monitoring", "Monitoring")
    page.screenshot(path=shots / "5-monitoring.png", full_page=True)
    context.close()
