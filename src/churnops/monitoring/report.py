"""The HTML monitoring report: our summary on top of an Evidently drift report.

Our summary says what a person needs first (verdict, retrain decision and reasons, drifted
features, how drift and performance moved over the recent monitoring runs, performance
against the champion's holdout); Evidently's DataDriftPreset below it shows each column's
distributions. The history charts are the dashboard's own (:mod:`churnops.charts`), drawn
from the same store reads, so the report and the Monitoring page show the same picture.
Evidently runs on a sample of at most ``report_sample_rows`` rows per side: it is slow on
large tables, and pictures of a distribution do not need a million rows. The statistics
in the summary always use all rows. One self-contained file: our section (with its own
copy of plotly.js, once) is inserted at the top of Evidently's page.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from churnops import charts
from churnops.charts.html import Section, head, main, page
from churnops.config import Settings
from churnops.data.contract import DataContract
from churnops.monitoring.store import band, feature_psi, performance_points, run_history

if TYPE_CHECKING:
    from churnops.monitoring.result import MonitoringResult

TITLE = "churnops monitoring report"
HISTORY_RUNS = 30  # stored runs drawn before this one
HEATMAP_RUNS = 10  # the PSI heat map's columns stay readable


def report_location(settings: Settings, name: str) -> str | Path:
    """Return where the report file ``name`` goes (a path, or an ``s3://`` URL).

    In ``reports_location`` (a folder or a bucket prefix) when set, else in home/reports.
    """
    from churnops.data.storage import join

    return join(settings.reports_location or settings.home / "reports", name)


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
    sections = summary_sections(result, settings)
    if evidently is None:
        sections.append("<p>Evidently drift details unavailable: see warnings.</p>")
        text = page(TITLE, sections)
    else:
        sections.append("<hr><p>Drift details by Evidently (on a sample) follow.</p>")
        text = _insert_after_body(evidently, head() + main(TITLE, sections))
    path.write_text(text, encoding="utf-8")
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


def summary_sections(result: MonitoringResult, settings: Settings) -> list[Section]:
    """Return our summary: the verdict, the history charts, then the detail tables.

    History comes from the store (this run is not stored yet, so it is added from the
    result). A store that cannot be read costs the charts, never the verdict: the failure
    is listed under warnings.
    """
    try:
        history = history_sections(result, settings)
    except Exception as exc:  # a failing picture must not hide the verdict
        result.warnings.append(f"Monitoring history unavailable: {exc}")
        history = []
    return [verdict_html(result), *history, tables_html(result)]


def history_sections(result: MonitoringResult, settings: Settings) -> list[Section]:
    """Return drift share, PSI by feature and F1 over the recent runs and this one."""
    runs = run_history(settings, limit=HISTORY_RUNS)
    ids = [r["id"] for r in runs]
    this_run: dict[str, Any] = {
        "id": None,
        "run_id": None,
        "at": result.at,
        "model_version": result.model_version,
        "drift_share": result.drift.drift_share,
        "retrain": result.decision.retrain,
        "estimated_f1": result.estimated.get("f1"),
        "realised_f1": (result.realised or {}).get("f1"),
        "baseline_f1": result.baseline.get("f1"),
        **_this_band(result),
    }
    cells = feature_psi(settings, ids[-(HEATMAP_RUNS - 1) :]) + [
        {"run_id": None, "feature": f.feature, "psi": f.psi, "drifted": f.drifted}
        for f in result.drift.features
    ]
    points = [*performance_points(settings, ids), this_run]
    return [
        charts.drift_share_over_time([*runs, this_run], settings.drift_share_alert),
        charts.psi_heatmap(cells, {None: "this run"}),
        charts.performance_over_time(points, result.plan.f1_floor if result.plan else None),
    ]


def _this_band(result: MonitoringResult) -> dict[str, float | None]:
    f1 = result.estimated_band.get("f1")
    if f1:
        return {"lower": f1[0], "upper": f1[1]}
    return band([w.to_dict() for w in result.windows])


def verdict_html(result: MonitoringResult) -> str:
    """Return what was compared, the verdict, the reasons and the drift in one line."""
    e = html.escape
    verdict = result.verdict
    parts = [
        f"<p>Model <b>{e(result.model_name)} v{e(result.model_version)}</b>; "
        f"current <b>{e(result.current_name)}</b> ({result.current_rows:,} rows, "
        f"{result.labelled_rows:,} labelled) vs reference <b>{e(result.reference_name)}</b> "
        f"({result.reference_rows:,} rows); {result.at:%Y-%m-%d %H:%M} UTC.</p>",
        f"<h2 class='verdict-{verdict}'>Verdict: {verdict.upper()}</h2>",
    ]
    check = result.estimate_check
    if check and check["disagrees"]:
        parts.append(f"<p class='alert'><b>{e(check['message'])}</b></p>")
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
    return "\n".join(parts)


def tables_html(result: MonitoringResult) -> str:
    """Return performance vs the champion's holdout, per window, per feature, warnings."""
    e = html.escape
    parts = [
        "<h3>Performance</h3><table><tr><th>metric</th><th>champion holdout</th>",
        "<th>estimated (label-free)</th><th>realised</th></tr>",
    ]
    for key in ("roc_auc", "pr_auc", "f1", "precision", "recall"):
        realised = (result.realised or {}).get(key)
        bounds = result.estimated_band.get(key)
        within = f" ({bounds[0]:.3f}–{bounds[1]:.3f})" if bounds else ""
        parts.append(
            f"<tr><td>{key}</td><td>{_num(result.baseline.get(key))}</td>"
            f"<td>{_num(result.estimated.get(key))}{within}</td><td>{_num(realised)}</td></tr>"
        )
    parts.append("</table>")
    if result.estimate_assumption:
        parts.append(f"<p><small>{e(result.estimate_assumption)}</small></p>")
    if result.plan:
        plan = result.plan
        floor = "none" if plan.f1_floor is None else f"{plan.f1_floor:.3f}"
        parts.append("<h3>What this run watched</h3><ul>")
        parts += [
            f"<li>{e(label)}: {e(value)} <small>({e(source)})</small></li>"
            for label, value, source in (
                ("Key features", ", ".join(plan.key_features) or "none", plan.key_features_from),
                ("Segments", ", ".join(plan.segment_columns) or "none", plan.segments_from),
                ("Time column", plan.date_column or "none", plan.date_from),
                ("F1 floor", floor, plan.f1_floor_from),
            )
        ]
        parts.append("</ul>")
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
    return "\n".join(parts)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _insert_after_body(document: str, section: str) -> str:
    marker = document.find("<body")
    if marker < 0:
        return section + document
    end = document.find(">", marker) + 1
    return document[:end] + section + document[end:]
