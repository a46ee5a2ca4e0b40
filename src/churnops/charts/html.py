"""Self-contained HTML pages of charts: what a manager e-mails is what the dashboard showed.

One file that opens offline: plotly.js is inlined once in the head, and every figure is
a ``<div>`` with its own data but no copy of the library (a 4 MB library per chart would
make a report of ten charts 40 MB). Text given as a title, heading, table cell or KPI is
escaped here; a ``str`` section is HTML the caller built (escape data with :func:`table`,
:func:`kpis` or ``html.escape``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import plotly.graph_objects as go

Section = str | go.Figure | tuple[str, go.Figure]

CSS = """<style>
.churnops{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;
 max-width:1100px;margin:24px auto;padding:0 16px;line-height:1.45}
.churnops h1{font-size:1.6em;margin:0 0 12px}.churnops h2{font-size:1.25em;margin:28px 0 8px}
.churnops h3{font-size:1.05em;margin:20px 0 6px}
.churnops table{border-collapse:collapse;margin:8px 0 20px;font-size:.92em}
.churnops td,.churnops th{border:1px solid #d0d7de;padding:4px 10px;text-align:right;
 vertical-align:top}
.churnops th{background:#f6f8fa}.churnops td:first-child,.churnops th:first-child{text-align:left}
.churnops td.text,.churnops th.text{text-align:left}
.churnops .kpis{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0 16px}
.churnops .kpi{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:120px}
.churnops .kpi b{display:block;font-size:1.35em}.churnops .kpi span{color:#57606a;font-size:.85em}
.churnops .figure{margin:8px 0 16px}
.churnops .verdict-ok{color:#1a7f37}.churnops .verdict-drift{color:#9a6700}
.churnops .verdict-retrain{color:#cf222e}
.churnops p.alert{background:#ffebe9;border-left:4px solid #cf222e;padding:.5em}
.churnops tr.alert{background:#ffebe9}.churnops tr.warn{background:#fff8c5}
.churnops .muted{color:#57606a}
</style>"""

CONFIG = {"displaylogo": False, "responsive": True}


def page(title: str, sections: Sequence[Section]) -> str:
    """Return one standalone HTML document: ``title``, then the sections in order."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title>{head()}</head>\n"
        f"<body>{main(title, sections)}</body></html>\n"
    )


def head() -> str:
    """Return the stylesheet and the one inlined copy of plotly.js.

    Separate from :func:`page`, with :func:`main`, for a page whose head is not ours:
    the monitoring report puts ``head() + main(...)`` on top of Evidently's page.
    """
    from plotly.offline import get_plotlyjs

    return f"{CSS}<script type='text/javascript'>{get_plotlyjs()}</script>"


def main(title: str, sections: Sequence[Section]) -> str:
    """Return the titled container of the sections (the styles apply inside it only)."""
    return f"<main class='churnops'><h1>{escape(title)}</h1>\n{body(sections)}</main>"


def body(sections: Sequence[Section]) -> str:
    """Return the sections as HTML: figures as divs that use the page's plotly.js."""
    parts = []
    for section in sections:
        if isinstance(section, tuple):
            heading, fig = section
            parts.append(f"<h2>{escape(heading)}</h2>{_figure_div(fig)}")
        elif isinstance(section, go.Figure):
            parts.append(_figure_div(section))
        else:
            parts.append(section)
    return "\n".join(parts)


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    text_columns: Sequence[str] = (),
    row_classes: Sequence[str] | None = None,
) -> str:
    """Return an HTML table, every header and cell escaped (numbers right-aligned).

    ``text_columns`` are left-aligned like the first column; ``row_classes`` (one per
    row) lets a row be highlighted (``alert``, ``warn``).
    """
    left = set(text_columns)

    def cell(tag: str, column: str, value: Any) -> str:
        css = " class='text'" if column in left else ""
        return f"<{tag}{css}>{escape('' if value is None else str(value))}</{tag}>"

    header = "".join(cell("th", c, c) for c in columns)
    lines = [f"<table><tr>{header}</tr>"]
    for i, row in enumerate(rows):
        css = f" class='{escape(row_classes[i])}'" if row_classes and row_classes[i] else ""
        cells = "".join(cell("td", c, v) for c, v in zip(columns, row, strict=True))
        lines.append(f"<tr{css}>{cells}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def kpis(items: Mapping[str, Any]) -> str:
    """Return a row of key figures: each value large, its label small below it."""
    boxes = "".join(
        f"<div class='kpi'><b>{escape(str(value))}</b><span>{escape(label)}</span></div>"
        for label, value in items.items()
    )
    return f"<div class='kpis'>{boxes}</div>"


def _figure_div(fig: go.Figure) -> str:
    html = fig.to_html(full_html=False, include_plotlyjs=False, config=CONFIG)
    return f"<div class='figure'>{html}</div>"
