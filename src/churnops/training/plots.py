"""Evaluation plots written as PNG files (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def evaluation_plots(
    y: np.ndarray, p: np.ndarray, threshold: float, out_dir: Path, title: str
) -> list[Path]:
    """Write ROC, PR, calibration and confusion-matrix plots; return their paths."""
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    def save(name: str, fig: object) -> None:
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")  # type: ignore[attr-defined]
        plt.close(fig)  # type: ignore[arg-type]
        paths.append(path)

    fig, ax = plt.subplots(figsize=(5, 4))
    RocCurveDisplay.from_predictions(y, p, ax=ax, name=title)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    save("roc_curve", fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    PrecisionRecallDisplay.from_predictions(y, p, ax=ax, name=title)
    save("pr_curve", fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    CalibrationDisplay.from_predictions(y, p, n_bins=10, ax=ax, name=title)
    save("calibration", fig)

    fig, ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(
        y, (p >= threshold).astype(int), display_labels=["stay", "churn"], ax=ax
    )
    ax.set_title(f"threshold {threshold:.3f}")
    save("confusion_matrix", fig)

    return paths


def curve_plot(
    thresholds: np.ndarray, values: np.ndarray, chosen: float, ylabel: str, path: Path
) -> Path:
    """Write an objective-vs-threshold curve (F1 or campaign profit) with the chosen cut."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(thresholds, values)
    ax.axvline(chosen, color="k", ls="--", lw=0.8)
    ax.set_xlabel("threshold")
    ax.set_ylabel(ylabel)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path
