"""Drift statistics, hand-written and vectorised: PSI, KS, chi-square, Jensen–Shannon.

Why not a library: Evidently's DataDriftPreset needs ~23 s and ~1.9 GB for 1M vs 1M rows
× 20 features on our machines; the loop needs seconds. Each numeric column is sorted
once per side, and every statistic is read off the two sorted arrays:

- PSI bins are the reference's quantiles, so each bin holds ~1/``bins`` of the reference;
  bin counts are ``searchsorted`` of the edges into the sorted arrays (O(bins · log n)).
- KS merges the two sorted runs (a stable sort of two runs is a linear merge) and takes the
  largest CDF gap at the last position of each distinct value, so ties match scipy.
- Categorical columns are counted by level (``value_counts``) on each side and aligned;
  levels only the current data has (unseen categories) get their own bins.

Missing values get their own PSI/JS bin, so a column that suddenly goes blank drifts;
KS and chi-square compare the present values. Empty bins are smoothed with ``EPS`` in PSI
(as Evidently and most PSI write-ups do), never in JS, which is finite without it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from churnops.data.contract import DataContract, as_numeric, label_key

EPS = 1e-4
MAX_NEW_CATEGORIES_SHOWN = 20


@dataclass(frozen=True)
class DriftThresholds:
    """When a PSI is worth a warning or an alert, and the tests' significance level."""

    psi_warn: float = 0.1
    psi_alert: float = 0.25
    p_value: float = 0.05
    bins: int = 10


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift: PSI, the test (KS or chi-square), JS distance and data quality."""

    feature: str
    kind: str  # numeric | categorical | boolean
    test: str  # ks | chi2
    statistic: float
    p_value: float
    psi: float
    js: float
    drifted: bool
    severity: str  # ok | warn | alert (by PSI)
    missing_reference: float
    missing_current: float
    new_categories: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return asdict(self)


# --- the statistics -----------------------------------------------------------------------


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, eps: float = EPS) -> float:
    """Return the population stability index of two histograms over the same bins.

    Shares are floored at ``eps`` so an empty bin on one side gives a large but finite term.
    """
    r = _shares(reference_counts)
    c = _shares(current_counts)
    if r is None or c is None:
        return 0.0
    r = np.maximum(r, eps)
    c = np.maximum(c, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Return the Jensen–Shannon distance (base 2, in [0, 1]) of two histograms."""
    p = _shares(reference_counts)
    q = _shares(current_counts)
    if p is None or q is None:
        return 0.0
    m = 0.5 * (p + q)
    divergence = 0.5 * (_kl2(p, m) + _kl2(q, m))
    return float(np.sqrt(max(divergence, 0.0)))


def ks_sorted(reference_sorted: np.ndarray, current_sorted: np.ndarray) -> tuple[float, float]:
    """Return the two-sample KS statistic and its asymptotic p-value from sorted samples.

    The p-value is scipy's ``method="asymp"`` one (Smirnov's distribution with the
    effective size ``n·m/(n+m)``): monitoring windows hold hundreds of rows or more.
    """
    n, m = len(reference_sorted), len(current_sorted)
    if n == 0 or m == 0:
        return 0.0, 1.0
    values = np.concatenate([reference_sorted, current_sorted])
    # Integer steps (m per reference row, -n per current row) keep the CDF gap exact.
    steps = np.concatenate([np.full(n, m, dtype=np.int64), np.full(m, -n, dtype=np.int64)])
    order = np.argsort(values, kind="stable")  # two sorted runs: a linear merge
    values = values[order]
    gap = np.cumsum(steps[order])
    last_of_value = np.append(values[1:] != values[:-1], True)
    d = float(np.max(np.abs(gap[last_of_value]))) / (n * m)
    big, small = max(n, m), min(n, m)
    effective = round(big * small / (big + small))
    return d, float(np.clip(stats.kstwo.sf(d, effective), 0.0, 1.0))


def chi_square(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Return Pearson's chi-square statistic and p-value for a 2 × k table of level counts."""
    table = np.vstack([reference_counts, current_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    total = table.sum()
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1))


def quantile_edges(sorted_values: np.ndarray, bins: int) -> np.ndarray:
    """Return the distinct inner bin edges at the reference's 1/bins … (bins-1)/bins quantiles."""
    n = len(sorted_values)
    if n == 0:
        return np.empty(0)
    position = np.linspace(0, n - 1, bins + 1)[1:-1]
    lo = np.floor(position).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    frac = position - lo
    edges = sorted_values[lo] + frac * (sorted_values[hi] - sorted_values[lo])
    return np.unique(edges)


def binned_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Return counts in the bins (-inf, e0], (e0, e1], …, (e_last, inf) of sorted values."""
    at_or_below = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate([[0], at_or_below, [len(sorted_values)]]))


# --- one column ------------------------------------------------------------------------------


def numeric_drift(
    name: str,
    reference: np.ndarray,
    current: np.ndarray,
    thresholds: DriftThresholds = DriftThresholds(),
    kind: str = "numeric",
) -> FeatureDrift:
    """Compare one numeric column (float arrays, NaN = missing)."""
    ref_missing, cur_missing = np.isnan(reference), np.isnan(current)
    ref = np.sort(reference[~ref_missing])
    cur = np.sort(current[~cur_missing])
    edges = quantile_edges(ref, thresholds.bins)
    ref_counts = np.append(binned_counts(ref, edges), ref_missing.sum())
    cur_counts = np.append(binned_counts(cur, edges), cur_missing.sum())
    statistic, p_value = ks_sorted(ref, cur)
    return _result(
        name,
        kind,
        "ks",
        statistic,
        p_value,
        ref_counts,
        cur_counts,
        thresholds,
        _rate(ref_missing),
        _rate(cur_missing),
    )


def categorical_drift(
    name: str,
    reference: pd.Series,
    current: pd.Series,
    thresholds: DriftThresholds = DriftThresholds(),
    kind: str = "categorical",
) -> FeatureDrift:
    """Compare one categorical (or boolean) column level by level, unseen levels included."""
    key = label_key if kind == "boolean" else _level
    ref_counts = _level_counts(reference, key)
    cur_counts = _level_counts(current, key)
    levels = ref_counts.index.union(cur_counts.index, sort=False)
    r = ref_counts.reindex(levels, fill_value=0).to_numpy(dtype=float)
    c = cur_counts.reindex(levels, fill_value=0).to_numpy(dtype=float)
    statistic, p_value = chi_square(r, c)
    ref_missing, cur_missing = int(reference.isna().sum()), int(current.isna().sum())
    new = [str(v) for v in cur_counts.index.difference(ref_counts.index)]
    return _result(
        name,
        kind,
        "chi2",
        statistic,
        p_value,
        np.append(r, ref_missing),
        np.append(c, cur_missing),
        thresholds,
        ref_missing / max(len(reference), 1),
        cur_missing / max(len(current), 1),
        sorted(new)[:MAX_NEW_CATEGORIES_SHOWN],
    )


# --- a table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataDrift:
    """Every feature's drift plus the table-level summary."""

    features: list[FeatureDrift]

    @property
    def drifted_features(self) -> list[str]:
        """Return the names of the drifted features, strongest PSI first."""
        drifted = [f for f in self.features if f.drifted]
        return [f.feature for f in sorted(drifted, key=lambda f: -f.psi)]

    @property
    def drift_share(self) -> float:
        """Return the share of features that drifted."""
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    def by_name(self) -> dict[str, FeatureDrift]:
        """Return the features keyed by name."""
        return {f.feature: f for f in self.features}


def data_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    contract: DataContract,
    thresholds: DriftThresholds = DriftThresholds(),
    features: Sequence[str] | None = None,
    workers: int | None = None,
) -> DataDrift:
    """Compare every contract feature of ``current`` with ``reference``.

    Columns are independent, so they run on a small thread pool: numpy's sorts and
    searches release the GIL. A feature missing from one side is skipped (validation
    reports missing columns; drift compares what is there).
    """
    names = list(features) if features is not None else contract.feature_names
    specs = [contract.column(n) for n in names if n in reference.columns and n in current.columns]

    def one(spec: Any) -> FeatureDrift:
        if spec.kind == "numeric":
            return numeric_drift(
                spec.name,
                _floats(reference[spec.name]),
                _floats(current[spec.name]),
                thresholds,
            )
        return categorical_drift(
            spec.name, reference[spec.name], current[spec.name], thresholds, spec.kind
        )

    workers = workers or min(4, os.cpu_count() or 1)
    if workers <= 1 or len(specs) <= 1:
        return DataDrift([one(s) for s in specs])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return DataDrift(list(pool.map(one, specs)))


def prediction_drift(
    reference_scores: np.ndarray,
    current_scores: np.ndarray,
    threshold: float,
    thresholds: DriftThresholds = DriftThresholds(),
) -> dict[str, float]:
    """Compare the model's score distributions and the share flagged as high risk."""
    drift = numeric_drift(
        "probability",
        np.asarray(reference_scores, dtype=float),
        np.asarray(current_scores, dtype=float),
        thresholds,
    )
    return {
        "psi": drift.psi,
        "ks": drift.statistic,
        "p_value": drift.p_value,
        "js": drift.js,
        "high_risk_share": float(np.mean(np.asarray(current_scores) >= threshold))
        if len(current_scores)
        else 0.0,
        "reference_high_risk_share": float(np.mean(np.asarray(reference_scores) >= threshold))
        if len(reference_scores)
        else 0.0,
        "mean_score": float(np.mean(current_scores)) if len(current_scores) else 0.0,
        "reference_mean_score": float(np.mean(reference_scores)) if len(reference_scores) else 0.0,
    }


# --- helpers ---------------------------------------------------------------------------------


def _result(
    name: str,
    kind: str,
    test: str,
    statistic: float,
    p_value: float,
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    thresholds: DriftThresholds,
    missing_reference: float,
    missing_current: float,
    new_categories: list[str] | None = None,
) -> FeatureDrift:
    value = psi(ref_counts, cur_counts)
    severity = (
        "alert"
        if value >= thresholds.psi_alert
        else "warn"
        if value >= thresholds.psi_warn
        else "ok"
    )
    # Large samples make every tiny shift "significant"; small ones make PSI noisy. A
    # feature drifts when the shift is both material (PSI) and real (the test), or huge.
    drifted = value >= thresholds.psi_alert or (
        value >= thresholds.psi_warn and p_value < thresholds.p_value
    )
    return FeatureDrift(
        feature=name,
        kind=kind,
        test=test,
        statistic=float(statistic),
        p_value=float(p_value),
        psi=value,
        js=js_distance(ref_counts, cur_counts),
        drifted=bool(drifted),
        severity=severity,
        missing_reference=float(missing_reference),
        missing_current=float(missing_current),
        new_categories=new_categories or [],
    )


def _shares(counts: np.ndarray) -> np.ndarray | None:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else None


def _kl2(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))


def _rate(mask: np.ndarray) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def _floats(values: pd.Series) -> np.ndarray:
    numeric = as_numeric(values)
    if numeric is None:  # text where numbers were expected: every cell counts as missing
        return np.full(len(values), np.nan)
    return numeric.to_numpy(dtype=float, na_value=np.nan)


def _level(value: Any) -> str:
    return str(value).strip()


def _level_counts(values: pd.Series, key: Any) -> pd.Series:
    """Count levels on the raw values (fast hashing), then normalise the few level names."""
    counts = values.value_counts(dropna=True, sort=False)
    if counts.empty:
        return pd.Series(dtype=float)
    counts.index = [key(v) for v in counts.index]
    return counts.groupby(level=0, sort=False).sum()
