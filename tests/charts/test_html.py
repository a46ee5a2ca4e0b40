"""Static pages: one copy of plotly.js, every figure a div using it, data escaped, offline."""

from __future__ import annotations

import re

import numpy as np

from churnops import charts
from churnops.charts.html import kpis, page, table

EVIL = "<script>alert('x')</script>"


def _page() -> str:
    fig = charts.score_distribution(np.array([0.2, 0.7]), 0.5)
    reasons = charts.top_reason_counts([{"reasons": [{"feature": EVIL, "contribution": 1.0}]}])
    return page(
        f"Report {EVIL}",
        [
            kpis({"customers": "1,234", EVIL: EVIL}),
            fig,
            (f"Reasons {EVIL}", reasons),
            table(["customer", "score"], [[EVIL, 0.7]], row_classes=["alert"]),
        ],
    )


def test_plotly_js_is_inlined_once_and_every_figure_uses_it() -> None:
    html = _page()
    assert html.count('class="plotly-graph-div"') == 2
    # plotly.js announces its version once in its licence header: one copy of the library
    assert len(re.findall(r"plotly\.js v\d+\.\d+\.\d+", html)) == 1
    assert html.index("plotly.js v") < html.index('class="plotly-graph-div"')
    assert html.startswith("<!DOCTYPE html>")


def test_works_offline_no_remote_script_or_style() -> None:
    html = _page()
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=['\"]?https?:", html)


def test_all_text_is_escaped() -> None:
    """Title, headings, KPI labels and values, table cells and figure data."""
    html = _page()
    assert EVIL not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html  # the text, shown
    assert "<tr class='alert'>" in html


def test_a_page_with_no_sections_is_still_a_page() -> None:
    html = page("Nothing yet", [])
    assert "<h1>Nothing yet</h1>" in html
    assert html.rstrip().endswith("</html>")
