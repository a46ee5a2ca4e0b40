"""The retrain decision: retrain only on evidence, and always say which evidence.

Five kinds of evidence, each a reason string so a person reading the report, the store
or ``--json`` sees why:

- performance: the realised F1 (labels) — or, without labels, the label-free estimate —
  below the F1 floor (absolute, or relative to the champion's holdout: see
  :mod:`churnops.monitoring.plan`);
- a broken estimate: labels arrived and the realised metrics fall below the label-free
  estimate's band — the model does worse than its own scores say (the relation between
  features and churn changed, or calibration broke), which the estimate cannot see
  (realised metrics above the band are reported too, but a better model is no reason to
  retrain);
- drift: the share of drifted features at or above ``drift_share_alert``, a key feature's
  PSI at or above ``psi_alert``, or the score distribution's PSI at or above ``psi_alert``;
- calendar: the champion is ``retrain_after_days`` old;
- data: the training source's content digest differs from the champion's training data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from churnops.config import Settings


@dataclass(frozen=True)
class Evidence:
    """What the decision looks at; every field optional so each trigger can be tested alone."""

    drift_share: float | None = None
    feature_psi: dict[str, float] = field(default_factory=dict)
    prediction_psi: float | None = None
    realised_f1: float | None = None
    estimated_f1: float | None = None
    champion_created: str | None = None  # ISO timestamp
    champion_digest: str | None = None
    source_digest: str | None = None
    estimate_disagreement: str | None = None  # what the labels contradicted, in words
    now: datetime | None = None


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain, and the reasons (empty when not)."""

    retrain: bool
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return asdict(self)


def decide(
    evidence: Evidence,
    settings: Settings,
    *,
    key_features: Sequence[str] = (),
    f1_floor: float | None = None,
) -> RetrainDecision:
    """Apply every trigger in ``settings`` to ``evidence``.

    ``key_features`` and ``f1_floor`` are the run's resolved ones (derived from the data
    and the champion unless configured); without them those triggers stay silent.
    """
    reasons: list[str] = []
    if f1_floor is not None:
        if evidence.realised_f1 is not None:
            if evidence.realised_f1 < f1_floor:
                reasons.append(
                    f"realised F1 {evidence.realised_f1:.3f} is below the floor {f1_floor:.3f}"
                )
        elif evidence.estimated_f1 is not None and evidence.estimated_f1 < f1_floor:
            reasons.append(
                f"estimated F1 {evidence.estimated_f1:.3f} (label-free) is below the floor "
                f"{f1_floor:.3f}"
            )
    if evidence.estimate_disagreement:
        reasons.append(evidence.estimate_disagreement)
    if evidence.drift_share is not None and evidence.drift_share >= settings.drift_share_alert:
        reasons.append(
            f"{evidence.drift_share:.0%} of features drifted "
            f"(alert at {settings.drift_share_alert:.0%})"
        )
    for name in key_features:
        value = evidence.feature_psi.get(name)
        if value is not None and value >= settings.psi_alert:
            reasons.append(f"key feature {name!r} PSI {value:.3f} >= {settings.psi_alert}")
    if evidence.prediction_psi is not None and evidence.prediction_psi >= settings.psi_alert:
        reasons.append(
            f"score distribution PSI {evidence.prediction_psi:.3f} >= {settings.psi_alert}"
        )
    age = champion_age_days(evidence.champion_created, evidence.now)
    if age is not None and age >= settings.retrain_after_days:
        reasons.append(
            f"champion is {age:.0f} days old (retrain every {settings.retrain_after_days} days)"
        )
    if (
        evidence.source_digest
        and evidence.champion_digest
        and evidence.source_digest != evidence.champion_digest
    ):
        reasons.append(
            f"source data changed (digest {evidence.source_digest} differs from the "
            f"champion's training data {evidence.champion_digest})"
        )
    return RetrainDecision(bool(reasons), reasons)


def champion_age_days(created: str | None, now: datetime | None = None) -> float | None:
    """Return how many days ago ``created`` (ISO timestamp) was, or None without one."""
    if not created:
        return None
    when = datetime.fromisoformat(created)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - when).total_seconds() / 86_400
