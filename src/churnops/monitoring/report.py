"""The HTML monitoring report: our summary on top of an Evidently drift report.

Our summary says what a person needs first (verdict, retrain decision and reasons, drifted
features, performance against the champion's holdout); Evidently's DataDriftPreset below
it shows each column's distributions. Evidently runs on a sample of at most
``report_sample_rows`` rows per side: it is slow on large tables, and pictures of a
distribution do not need a million rows. The statistics in the summary always use all rows.
One self-contained file: our section is inserted at the top of Evidently's page.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from churnops.config import Settings
from churnops.data.contract import DataContract

if TYPE_CHECKING:
    from churnops.monitoring.result import MonitoringResult

STYLE = """
<style>
 .churnops-summary{font-family:system-ui,sans-serif;margin:24px;max-width:1100px}
 .churnops-summary table{border-collapse:collapse;margin:8px 0 20px}
 .churnops-summary td,.churnops-summary th{border:1px solid #ccc;padding:4px 10px;
   text-align:right}
 .churnops-summary th{background:#f3f3f3}
 .churnops-summary td:first-child{text-align:left}
 .verdict-ok{color:#1a7f37}.verdict-drift{color:#9a6700}.verdict-retrain{color:#cf222e}
 .alert{background:#ffebe9}.warn{background:#fff8c5}
</style>
"""


def write_report(
    path: Path,
    result: MonitoringResult,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    contract: DataContract,
    settings: Settings,
) -> Path:
    """Write the report to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        evidently = evidently_html(reference, current, contract, settings)
    except Exception as exc:  # a failing picture must not hide the verdict
        result.warnings.append(f"Evidently report failed: {exc}")
        evidently = None
    summary = STYLE + summary_html(result)
    if evidently is None:
        page = f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{summary}"
        page += "<p>Evidently drift details unavailable: see warnings.</p></body></html>"
    else:
        page = _insert_after_body(evidently, summary)
    path.write_text(page, encoding="utf-8")
    return path


def evidently_html(
    reference: pd.DataFrame, current: pd.DataFrame, contract: DataContract, settings: Settings
) -> str:
    """Return Evidently's DataDriftPreset report on (a sample of) the contract features."""
    import tempfile

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric = [f.name for f in contract.features if f.kind == "numeric"]
    categorical = [f.name for f in contract.features if f.kind != "numeric"]
    columns = numeric + categorical
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)

    def prepared(frame: pd.DataFrame) -> Dataset:
        n = min(len(frame), settings.report_sample_rows)
        sample = frame[columns].sample(n, random_state=settings.seed) if n < len(frame) else frame
        sample = sample[columns].copy()
        for name in numeric:
            sample[name] = pd.to_numeric(sample[name], errors="coerce")
        for name in categorical:
            sample[name] = sample[name].astype("string")
        return Dataset.from_pandas(sample.reset_index(drop=True), data_definition=definition)

    snapshot = Report([DataDriftPreset()]).run(
        current_data=prepared(current), reference_data=prepared(reference)
    )
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "evidently.html"
        snapshot.save_html(str(file))
        return file.read_text(encoding="utf-8")


def summary_html(result: MonitoringResult) -> str:
    """Return our summary section: verdict, decision, drift table, performance."""
    e = html.escape
    verdict = result.verdict
    parts = [
        "<section class='churnops-summary'>",
        "<h1>churnops monitoring report</h1>",
        f"<p>Model <b>{e(result.model_name)} v{e(result.model_version)}</b>; "
        f"current <b>{e(result.current_name)}</b> ({result.current_rows:,} rows, "
        f"{result.labelled_rows:,} labelled) vs reference <b>{e(result.reference_name)}</b> "
        f"({result.reference_rows:,} rows); {result.at:%Y-%m-%d %H:%M} UTC.</p>",
        f"<h2 class='verdict-{verdict}'>Verdict: {verdict.upper()}</h2>",
    ]
    if result.decision.reasons:
        parts.append("<p>Retrain, because:</p><ul>")
        parts += [f"<li>{e(r)}</li>" for r in result.decision.reasons]
        parts.append("</ul>")
    else:
        parts.append("<p>No retrain trigger fired.</p>")
    drifted = result.drift.drifted_features
    parts.append(
        f"<p>Drifted features: {len(drifted)} of {len(result.drift.features)} "
        f"({result.drift.drift_share:.0%}): {e(', '.join(drifted) or 'none')}. "
        f"Score PSI {result.prediction['psi']:.3f}; high-risk share "
        f"{result.prediction['high_risk_share']:.1%} (reference "
        f"{result.prediction['reference_high_risk_share']:.1%}).</p>"
    )
    parts.append("<h3>Performance</h3><table><tr><th>metric</th><th>champion holdout</th>")
    parts.append("<th>estimated (label-free)</th><th>realised</th></tr>")
    for key in ("roc_auc", "pr_auc", "f1", "precision", "recall"):
        realised = (result.realised or {}).get(key)
        parts.append(
            f"<tr><td>{key}</td><td>{_num(result.baseline.get(key))}</td>"
            f"<td>{_num(result.estimated.get(key))}</td><td>{_num(realised)}</td></tr>"
        )
    parts.append("</table>")
    if result.windows:
        parts.append("<h3>By window</h3><table><tr><th>window</th><th>kind</th><th>rows</th>")
        parts.append("<th>roc_auc</th><th>f1</th><th>precision</th><th>recall</th></tr>")
        for w in result.windows:
            label = f"{w.window_start} – {w.window_end}" if w.window_start else "all"
            parts.append(
                f"<tr><td>{e(label)}</td><td>{w.kind}</td><td>{w.rows:,}</td>"
                + "".join(
                    f"<td>{_num(w.metrics.get(k))}</td>"
                    for k in ("roc_auc", "f1", "precision", "recall")
                )
                + "</tr>"
            )
        parts.append("</table>")
    parts.append("<h3>Features</h3><table><tr><th>feature</th><th>kind</th><th>PSI</th>")
    parts.append("<th>test</th><th>statistic</th><th>p-value</th><th>JS</th>")
    parts.append("<th>missing ref → cur</th><th>new categories</th></tr>")
    for f in sorted(result.drift.features, key=lambda f: -f.psi):
        parts.append(
            f"<tr class='{f.severity}'><td>{e(f.feature)}{' ⚠' if f.drifted else ''}</td>"
            f"<td>{f.kind}</td><td>{f.psi:.4f}</td><td>{f.test}</td>"
            f"<td>{f.statistic:.4f}</td><td>{f.p_value:.3g}</td><td>{f.js:.4f}</td>"
            f"<td>{f.missing_reference:.1%} → {f.missing_current:.1%}</td>"
            f"<td>{e(', '.join(f.new_categories))}</td></tr>"
        )
    parts.append("</table>")
    if result.warnings:
        parts.append("<h3>Warnings</h3><ul>")
        parts += [f"<li>{e(w)}</li>" for w in result.warnings]
        parts.append("</ul>")
    parts.append("<hr><p>Drift details by Evidently (on a sample) follow.</p></section>")
    return "\n".join(parts)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _insert_after_body(page: str, section: str) -> str:
    marker = page.find("<body")
    if marker < 0:
        return section + page
    end = page.find(">", marker) + 1
    return page[:end] + section + page[end:]
