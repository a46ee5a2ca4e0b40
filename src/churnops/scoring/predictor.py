"""A predictor: one registered model version, ready to score JSON records fast.

``Predictor.from_registry`` rebuilds everything from the one artifact (contract, encoder,
estimator, calibrator, threshold) and compiles the fast path; the API and batch jobs hold
a predictor and never look inside MLflow. Tests may plug in any object with the same
``score_one`` / ``score_many`` surface (the :class:`Scorer` protocol).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from churnops.errors import RegistryError
from churnops.scoring.fast import FastScorer
from churnops.scoring.model import ScoringModel
from churnops.scoring.records import RecordCodec

if TYPE_CHECKING:
    from churnops.config import Settings
    from churnops.registry import LoadedModel


class Scorer(Protocol):
    """What the API needs from a model: encode + score records, and say what it is."""

    name: str
    version: str

    def score_one(self, record: Any) -> tuple[float, list[float]]: ...

    def score_many(
        self, records: Sequence[Any], ids_judged: bool = False
    ) -> tuple[np.ndarray, Any]: ...


@dataclass
class Predictor:
    """A loaded model version with its record codec and compiled fast path."""

    model: ScoringModel
    name: str
    version: str
    run_id: str = ""
    family: str | None = None
    holdout: dict[str, float] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    source: str = "registry"  # registry | last-known-good
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    codec: RecordCodec = field(init=False)
    scorer: FastScorer = field(init=False)

    def __post_init__(self) -> None:
        self.codec = RecordCodec(self.model.contract)
        self.scorer = FastScorer(self.model)
        self.threshold = float(self.model.threshold)
        self._check()

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, source: str = "registry") -> Predictor:
        """Build a predictor from a version loaded by :func:`churnops.registry.load_model`."""
        v = loaded.version
        return cls(
            loaded.model,
            name=v.name,
            version=v.version,
            run_id=v.run_id,
            family=v.family or loaded.model.family,
            holdout=dict(v.holdout),
            aliases=list(v.aliases),
            source=source,
        )

    @classmethod
    def from_registry(
        cls, settings: Settings, alias: str | None = "champion", version: str | None = None
    ) -> Predictor:
        """Load a registered version (by alias or number) and compile its fast path."""
        from churnops.registry import load_model

        return cls.from_loaded(load_model(settings, alias=alias, version=version))

    def score_one(self, record: Any) -> tuple[float, list[float]]:
        """Validate and score one JSON record; return (probability, encoded row)."""
        row = self.codec.encode(record)
        return self.scorer.one(row), row

    def score_many(
        self, records: Sequence[Any], ids_judged: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validate and score JSON records; return (probabilities, encoded matrix).

        ``ids_judged``: every record's id was judged already and none refused (see
        :meth:`RecordCodec.encode_matrix`).
        """
        X = self.codec.encode_matrix(records, ids_judged)
        return self.scorer.many(X), X

    def reasons(
        self, rows: Sequence[Sequence[float]] | np.ndarray, top: int = 3
    ) -> list[list[dict[str, Any]]]:
        """Return each row's ``top`` signed log-odds reasons (see ScoringModel.reasons)."""
        X = np.array(rows, dtype=np.float64).reshape(len(rows), self.codec.width)
        return self.model.reasons(X, top=top)

    def example(self) -> dict[str, Any]:
        """Return a typical customer built from the contract (docs and warm-up)."""
        contract = self.model.contract
        record: dict[str, Any] = {}
        if contract.id:
            record[contract.id] = "CUST-0001"
        for spec in contract.features:
            if spec.kind == "numeric":
                value = spec.median
                record[spec.name] = int(value) if spec.integer else round(value, 2)
            elif spec.kind == "boolean":
                record[spec.name] = (spec.levels or [0, 1])[0]
            else:
                record[spec.name] = next(iter(spec.categories or {"": 0}))
        return record

    def _check(self) -> None:
        """Score the contract's own example once: a model that cannot is not loaded."""
        try:
            p, _row = self.score_one(self.example())
            batch, _ = self.score_many([self.example()])
        except Exception as exc:
            raise RegistryError(
                f"Model {self.name} v{self.version} cannot score its own contract's example: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not (0.0 <= p <= 1.0) or abs(float(batch[0]) - p) > 1e-9:
            raise RegistryError(
                f"Model {self.name} v{self.version} returned an invalid probability ({p})."
            )
