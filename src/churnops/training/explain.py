"""Global explanations: mean |SHAP| per source column, as JSON and a SHAP bar plot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from churnops.scoring.model import ScoringModel

SAMPLE_ROWS = 2000


def global_importance(
    model: ScoringModel, X: np.ndarray, seed: int = 0
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Return mean |SHAP| per source column (sorted), plus the grouped SHAP matrix and rows.

    SHAP values come from the family's own exact contributions (TreeSHAP / linear SHAP),
    grouped over one-hot columns so a categorical feature gets one importance.
    """
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X), size=min(SAMPLE_ROWS, len(X)), replace=False)
    grouped, _ = model.contributions(X[rows])
    mean_abs = np.abs(grouped).mean(axis=0)
    names = model.encoder.source_columns
    order = np.argsort(-mean_abs)
    importance = {names[j]: round(float(mean_abs[j]), 6) for j in order}
    return importance, grouped, rows


def shap_plot(grouped: np.ndarray, names: list[str], out_dir: Path) -> Path:
    """Write SHAP's bar plot of mean |SHAP| per feature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    explanation = shap.Explanation(values=grouped, feature_names=names)
    shap.plots.bar(explanation, max_display=15, show=False)
    path = out_dir / "shap_importance.png"
    plt.gcf().savefig(path, dpi=90, bbox_inches="tight")
    plt.close("all")
    return path
