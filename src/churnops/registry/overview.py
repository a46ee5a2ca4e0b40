"""What the dashboard's Model page shows about the champion and the challenger.

A version's training run never changes, so what is costly to read from it — MLflow's run
metrics, the importance artifact, and calibration (the holdout scored by the version's
own model) — is computed once and cached per version under ``<home>/cache/``. Later
reads only ask the registry which versions the aliases name and their tags: with a SQL
tracking store that imports no MLflow, so the page stays quick.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import numpy as np

from churnops.config import Settings
from churnops.errors import ModelNotFoundError
from churnops.registry.catalog import HMAC_KEY, MANIFEST_KEY, catalog_for, local_path
from churnops.registry.models import (
    CHALLENGER,
    CHAMPION,
    RegisteredVersion,
    get_version,
    load_model,
    load_run_frame,
)
from churnops.registry.tracking import configure

IMPORTANCE_ARTIFACT = "evaluation/shap_importance.json"
CALIBRATION_BINS = 10
CACHE_FORMAT = 1  # bump when what is cached changes


def model_overview(settings: Settings) -> dict[str, Any]:
    """Return ``{"champion": ..., "challenger": ...}``, each a version's card or None.

    A card has version, family, threshold, holdout and cv metrics, importance, run_id,
    run_url (the MLflow UI when tracking is an http(s) server), created_at, aliases,
    tags and calibration (``prob_pred``, ``prob_true``, ``counts`` on the holdout). The
    challenger is None when no version holds the alias or it names the champion itself
    (a first version holds both): there is then nothing waiting to be judged.
    """
    champion = _version(settings, CHAMPION)
    challenger = _version(settings, CHALLENGER)
    if challenger is not None and champion is not None and challenger.version == champion.version:
        challenger = None
    return {
        "champion": _card(settings, champion) if champion else None,
        "challenger": _card(settings, challenger) if challenger else None,
    }


def calibration_bins(
    y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS
) -> dict[str, list[float]]:
    """Return the reliability curve: per equal-width score bin, mean score, churn rate, size.

    Empty bins are left out (a point without customers says nothing).
    """
    y, p = np.asarray(y, dtype=float), np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    index = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    sum_p = np.bincount(index, weights=p, minlength=bins)
    sum_y = np.bincount(index, weights=y, minlength=bins)
    used = counts > 0
    return {
        "prob_pred": (sum_p[used] / counts[used]).tolist(),
        "prob_true": (sum_y[used] / counts[used]).tolist(),
        "counts": counts[used].tolist(),
    }


def _version(settings: Settings, alias: str) -> RegisteredVersion | None:
    try:
        return get_version(settings, alias=alias)
    except ModelNotFoundError:
        return None


def _card(settings: Settings, version: RegisteredVersion) -> dict[str, Any]:
    record = catalog_for(settings.resolved_tracking_uri).version(version.name, version.version)
    tags = dict(record.tags) if record is not None else {}
    run = _run_facts(settings, version)
    return {
        "version": version.version,
        "family": version.family,
        "threshold": version.threshold,
        "holdout": version.holdout,
        "cv": run["cv"],
        "importance": run["importance"],
        "calibration": run["calibration"],
        "run_id": version.run_id,
        "run_url": _run_url(settings.resolved_tracking_uri, run["experiment_id"], version.run_id),
        "created_at": version.created,
        "aliases": version.aliases,
        "tags": {k: v for k, v in tags.items() if k not in (MANIFEST_KEY, HMAC_KEY)},
    }


def _run_facts(settings: Settings, version: RegisteredVersion) -> dict[str, Any]:
    """Return the version's cached run facts, computing and caching them on a miss."""
    path = settings.home / "cache" / "model-overview" / f"{version.name}-v{version.version}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("format") == CACHE_FORMAT and cached.get("run_id") == version.run_id:
            return cached
    except (OSError, ValueError):
        pass  # no cache yet, or a torn one: recompute
    facts = {
        "format": CACHE_FORMAT,
        "run_id": version.run_id,
        **_read_run(settings, version.run_id),
        "calibration": _calibration(settings, version),
    }
    # A torn file (two writers, a crash) is not valid JSON, so it is recomputed above.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(facts), encoding="utf-8")
    return facts


def _read_run(settings: Settings, run_id: str) -> dict[str, Any]:
    """Return the run's experiment, its cross-validated metrics and the importance it logged."""
    client = configure(settings)
    run = client.get_run(run_id)
    cv = {
        k.removeprefix("cv_"): v
        for k, v in run.data.metrics.items()
        if k.startswith("cv_") and not k.startswith("cv_best_")
    }
    return {
        "experiment_id": run.info.experiment_id,
        "cv": cv,
        "importance": run_importance(settings, run_id),
    }


def run_importance(settings: Settings, run_id: str) -> dict[str, float]:
    """Return the mean |SHAP| per feature a training run logged, largest first ({} if none).

    Read in place from a SQL store's local artifacts (no MLflow import: monitoring asks
    for it on every run to derive the key features); otherwise MLflow downloads it.
    """
    root = local_path(catalog_for(settings.resolved_tracking_uri).artifact_root(run_id))
    try:
        if root is not None and (root / IMPORTANCE_ARTIFACT).is_file():
            return json.loads((root / IMPORTANCE_ARTIFACT).read_text(encoding="utf-8"))
        with tempfile.TemporaryDirectory() as tmp:
            local = configure(settings).download_artifacts(run_id, IMPORTANCE_ARTIFACT, tmp)
            return json.loads(Path(local).read_text(encoding="utf-8"))
    except Exception:  # a run logged without it (older or by hand): no importance
        return {}


def _calibration(settings: Settings, version: RegisteredVersion) -> dict[str, list[float]]:
    """Score the version's holdout with the version's own model and bin it."""
    model = load_model(settings, version=version.version).model
    holdout = load_run_frame(settings, version.run_id)
    y = model.contract.target_series(holdout[model.contract.target]).to_numpy()
    p = model.probabilities(model.encoder.transform(holdout))
    known = ~np.isnan(y)
    return calibration_bins(y[known], p[known])


def _run_url(tracking_uri: str, experiment_id: str | None, run_id: str) -> str | None:
    """Return the run's page in the MLflow UI (credentials left out), or None off a server."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme not in ("http", "https") or experiment_id is None:
        return None
    host = parsed.hostname or ""
    netloc = f"{host}:{parsed.port}" if parsed.port else host
    base = urlunparse((parsed.scheme, netloc, parsed.path.rstrip("/"), "", "", ""))
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
