"""The promotion gate and rollback: move ``champion`` only on evidence, and record why.

Every decision is written twice: as tags on the registered model (so the registry carries
its own history, including the champion history rollback walks back through) and as a
row in the store's ``registry_events`` table (so operations can query it).

Every decision is made and recorded under the champion lock (:mod:`.lock`): the champion
and the history are read inside it, so concurrent promotions and rollbacks form one
chain, each recorded once, from the champion it actually replaced.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from churnops.config import Settings
from churnops.errors import ModelNotFoundError, RegistryError
from churnops.registry.lock import champion_lock
from churnops.registry.models import (
    CHALLENGER,
    CHAMPION,
    get_version,
    load_model,
    load_run_frame,
)
from churnops.registry.tracking import configure

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

HISTORY_TAG = "churnops.champion_history"


@dataclass(frozen=True)
class PromotionResult:
    """The gate's decision, with both versions and both scores on the same data."""

    decision: str  # "promoted" | "kept"
    reason: str
    metric: str
    min_delta: float
    champion_version: str
    challenger_version: str
    champion_score: float | None
    challenger_score: float | None
    evaluated_rows: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return asdict(self)


@dataclass(frozen=True)
class RollbackResult:
    """Which version was champion before and after a rollback."""

    from_version: str
    to_version: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return asdict(self)


def promote(
    settings: Settings,
    metric: str | None = None,
    min_delta: float | None = None,
    *,
    actor: str | None = None,
) -> PromotionResult:
    """Score champion and challenger on the challenger's holdout; promote on a clear win.

    The whole comparison holds the champion lock: a champion that changed while the two
    were being scored would make the gate's verdict (and the event's "from") wrong.
    ``actor`` is who asked, for the audit log (e.g. ``dashboard:<key name>``); default
    the OS user.
    """
    metric = metric or settings.metric
    min_delta = settings.min_delta if min_delta is None else min_delta
    client = configure(settings)
    with champion_lock(settings) as session:
        return _promote(session, settings, client, metric, min_delta, actor)


def _promote(
    session: Session,
    settings: Settings,
    client: Any,
    metric: str,
    min_delta: float,
    actor: str | None,
) -> PromotionResult:
    import numpy as np

    from churnops.training.evaluate import classification_metrics

    challenger = get_version(settings, alias=CHALLENGER)
    champion = get_version(settings, alias=CHAMPION)
    if challenger.version == champion.version:
        return PromotionResult(
            "kept",
            f"challenger v{challenger.version} is already the champion",
            metric,
            min_delta,
            champion.version,
            challenger.version,
            None,
            None,
            0,
        )
    holdout = load_run_frame(settings, challenger.run_id)
    challenger_model = load_model(settings, version=challenger.version).model
    champion_model = load_model(settings, version=champion.version).model
    y = challenger_model.contract.target_series(holdout[challenger_model.contract.target])
    y = y.to_numpy(dtype=int)
    scores = {}
    for key, model in (("challenger", challenger_model), ("champion", champion_model)):
        missing = [c for c in model.contract.feature_names if c not in holdout.columns]
        if missing:
            raise RegistryError(
                f"The {key} model needs column(s) the challenger's holdout lacks: "
                f"{', '.join(missing)}; the two models cannot be compared on the same data."
            )
        p = model.probabilities(model.encoder.transform(holdout))
        scores[key] = classification_metrics(y, np.asarray(p), model.threshold)[metric]
    decision, reason = gate(scores["champion"], scores["challenger"], metric, min_delta)
    event = (metric, scores["champion"], scores["challenger"])
    versions = (champion.version, challenger.version)
    if decision == "promoted":
        record_champion(session, settings, client, *versions, decision, reason, *event, actor=actor)
    else:
        record_event(session, settings, decision, *versions, reason, *event, actor=actor)
    return PromotionResult(
        decision,
        reason,
        metric,
        min_delta,
        champion.version,
        challenger.version,
        scores["champion"],
        scores["challenger"],
        len(holdout),
    )


def gate(champion: float, challenger: float, metric: str, min_delta: float) -> tuple[str, str]:
    """Decide ``promoted`` or ``kept``: the challenger must win by at least ``min_delta``."""
    gain = challenger - champion
    if gain >= min_delta:
        return "promoted", (
            f"challenger {metric} {challenger:.4f} beats champion {champion:.4f} "
            f"by {gain:+.4f} (>= {min_delta})"
        )
    return "kept", (
        f"challenger {metric} {challenger:.4f} vs champion {champion:.4f}: "
        f"gain {gain:+.4f} < {min_delta}, champion kept"
    )


def rollback(
    settings: Settings, to_version: str | None = None, *, actor: str | None = None
) -> RollbackResult:
    """Move ``champion`` back to the previous champion, or to ``to_version``.

    Reads the champion and its history under the champion lock, so concurrent rollbacks
    each start from the champion the one before them left. ``actor`` is who asked, for
    the audit log; default the OS user.
    """
    client = configure(settings)
    with champion_lock(settings) as session:
        return _rollback(session, settings, client, to_version, actor)


def _rollback(
    session: Session, settings: Settings, client: Any, to_version: str | None, actor: str | None
) -> RollbackResult:
    current = get_version(settings, alias=CHAMPION).version
    history = champion_history(settings, client)
    if to_version is None:
        # Walk back past the current champion to the one before it, and drop the tail.
        previous = [i for i, v in enumerate(history) if v != current]
        if not previous:
            raise ModelNotFoundError(
                f"Champion v{current} has no previous champion to roll back to; "
                "pass --to VERSION to choose one."
            )
        to_version = history[previous[-1]]
        history = history[: previous[-1] + 1]
    else:
        get_version(settings, version=to_version)  # raises when it does not exist
        history = [*history, str(to_version)]
    if str(to_version) == current:
        raise RegistryError(f"Version {current} is already the champion.")
    reason = f"rollback from v{current} to v{to_version}"
    _set_champion(settings, client, str(to_version), history)
    record_event(session, settings, "rollback", current, str(to_version), reason, actor=actor)
    return RollbackResult(current, str(to_version), reason)


def champion_history(settings: Settings, client: Any) -> list[str]:
    """Return the versions that held ``champion``, oldest first."""
    model = client.get_registered_model(settings.model_name)
    return json.loads((model.tags or {}).get(HISTORY_TAG, "[]"))


def record_champion(
    session: Session,
    settings: Settings,
    client: Any,
    from_version: str | None,
    to_version: str,
    action: str,
    reason: str,
    metric: str | None = None,
    from_score: float | None = None,
    to_score: float | None = None,
    *,
    actor: str | None = None,
) -> None:
    """Make ``to_version`` the champion, append it to the history, and record the event.

    The caller holds :func:`champion_lock` (``session`` is its session) and read
    ``from_version`` inside it.
    """
    history = [*champion_history(settings, client), to_version]
    _set_champion(settings, client, to_version, history)
    record_event(
        session,
        settings,
        action,
        from_version,
        to_version,
        reason,
        metric,
        from_score,
        to_score,
        actor=actor,
    )


def _set_champion(settings: Settings, client: Any, version: str, history: list[str]) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    client.set_registered_model_alias(settings.model_name, CHAMPION, version)
    client.set_registered_model_tag(settings.model_name, HISTORY_TAG, json.dumps(history))
    client.set_model_version_tag(settings.model_name, version, "churnops.champion_since", now)


def record_event(
    session: Session,
    settings: Settings,
    action: str,
    from_version: str | None,
    to_version: str | None,
    reason: str,
    metric: str | None = None,
    from_score: float | None = None,
    to_score: float | None = None,
    *,
    actor: str | None = None,
) -> None:
    """Add one registry decision to the store's ``registry_events`` (in the lock's session).

    ``actor`` None records the OS user (the CLI's and the pipeline's case).
    """
    from churnops.store import RegistryEvent

    session.add(
        RegistryEvent(
            at=datetime.now(UTC),
            model_name=settings.model_name,
            action=action,
            from_version=from_version,
            to_version=to_version,
            metric=metric,
            from_score=from_score,
            to_score=to_score,
            reason=reason,
            actor=actor or _os_user(),
        )
    )


def list_events(settings: Settings, limit: int = 50) -> list[dict[str, Any]]:
    """Return the latest registry events, newest first."""
    import sqlalchemy as sa

    from churnops.store import RegistryEvent, session_scope

    with session_scope(settings) as session:
        rows = session.scalars(
            sa.select(RegistryEvent)
            .where(RegistryEvent.model_name == settings.model_name)
            .order_by(RegistryEvent.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                c: getattr(r, c)
                for c in (
                    "at",
                    "action",
                    "from_version",
                    "to_version",
                    "metric",
                    "from_score",
                    "to_score",
                    "reason",
                    "actor",
                )
            }
            for r in rows
        ]


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
