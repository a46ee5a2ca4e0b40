"""The release gate: the model a release ships must meet the floors and keep the contract.

Promotion (:mod:`.promotion`) compares a challenger with the champion; a release asks a
different question of the champion alone: are its holdout metrics above the floors the
team signed up to, and does it accept exactly the records the API clients were built
for (the reviewed data contract)? The release workflow runs ``churnops models gate``
and ships nothing when either answer is no.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from churnops.config import Settings
from churnops.data.contract import label_key
from churnops.registry.models import CHAMPION, get_version, load_model

if TYPE_CHECKING:
    from churnops.data.contract import ColumnSpec, DataContract

SHOWN = 5
"""How many differing categories a message names before it counts the rest."""


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict on one registered version, with every reason it failed."""

    model_name: str
    version: str
    alias: str
    floors: dict[str, float]
    holdout: dict[str, float]
    contract_checked: bool
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Return True when no floor was missed and the contract (if given) matched."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (``passed`` included)."""
        return {**asdict(self), "passed": self.passed}


def release_gate(
    settings: Settings,
    floors: dict[str, float],
    contract: DataContract | None = None,
    alias: str = CHAMPION,
) -> GateResult:
    """Check ``alias``'s recorded holdout metrics against ``floors`` and its contract
    against ``contract``.

    The metrics are the ones registered with the version (measured on its holdout at
    training). The contract is read from the version's own artifact, whose files are
    verified against their recorded hashes first, so the gate judges the files a
    deployment will load. Raises ModelNotFoundError when ``alias`` names no version.
    """
    version = get_version(settings, alias=alias)
    failures = []
    for metric, floor in floors.items():
        value = version.holdout.get(metric)
        if value is None:
            failures.append(f"no holdout {metric} is recorded for v{version.version}")
        elif value < floor:
            failures.append(f"holdout {metric} {value:.4f} is below the floor {floor:.4f}")
    if contract is not None:
        actual = load_model(settings, version=version.version).model.contract
        failures += [f"contract: {d}" for d in contract_differences(contract, actual)]
    return GateResult(
        model_name=version.name,
        version=version.version,
        alias=alias,
        floors=dict(floors),
        holdout=dict(version.holdout),
        contract_checked=contract is not None,
        failures=failures,
    )


def contract_differences(expected: DataContract, actual: DataContract) -> list[str]:
    """Return how ``actual`` would treat client records differently from ``expected``.

    Compared: the target and id columns, the labels, and per column its role, kind,
    boolean levels, categories (when closed: an unseen category is refused) and
    policy. Not compared: the statistics and numeric ranges, which every training
    table re-derives (rows, digest, frequencies, quantiles, bounds), so a retrain on
    new data of the same shape keeps matching.
    """
    diffs = []
    for name in ("target", "id"):
        if getattr(expected, name) != getattr(actual, name):
            diffs.append(
                f"{name} column {getattr(actual, name)!r}, expected {getattr(expected, name)!r}"
            )
    if label_key(expected.positive_label) != label_key(actual.positive_label):
        diffs.append(
            f"positive label {actual.positive_label!r}, expected {expected.positive_label!r}"
        )
    if {label_key(v) for v in expected.labels} != {label_key(v) for v in actual.labels}:
        diffs.append(f"labels {actual.labels!r}, expected {expected.labels!r}")
    want = {c.name: c for c in expected.columns}
    have = {c.name: c for c in actual.columns}
    for name in [n for n in want if n not in have]:
        diffs.append(f"column {name!r} is missing")
    for name in [n for n in have if n not in want]:
        diffs.append(f"column {name!r} is not in the expected contract")
    for name in [n for n in want if n in have]:
        diffs += [f"column {name!r}: {d}" for d in _column_differences(want[name], have[name])]
    return diffs


def _column_differences(expected: ColumnSpec, actual: ColumnSpec) -> list[str]:
    diffs = []
    for attribute in ("role", "kind", "open_categories"):
        if getattr(expected, attribute) != getattr(actual, attribute):
            diffs.append(
                f"{attribute} {getattr(actual, attribute)!r}, "
                f"expected {getattr(expected, attribute)!r}"
            )
    if expected.kind == "boolean" and _keys(expected.levels) != _keys(actual.levels):
        diffs.append(f"levels {actual.levels!r}, expected {expected.levels!r}")
    closed = expected.role == "feature" and expected.kind == "categorical"
    if closed and not expected.open_categories and not actual.open_categories:
        want, have = set(expected.categories or {}), set(actual.categories or {})
        if want - have:
            diffs.append(f"refuses categories {_some(want - have)}")
        if have - want:
            diffs.append(f"accepts categories the contract lacks: {_some(have - want)}")
    if expected.policy != actual.policy:
        changed = {
            k: v for k, v in actual.policy.model_dump().items() if getattr(expected.policy, k) != v
        }
        diffs.append(f"policy {changed}, expected {expected.policy.model_dump()}")
    return diffs


def _keys(values: list[Any] | None) -> set[str]:
    return {label_key(v) for v in values or []}


def _some(values: set[str]) -> str:
    shown = sorted(values)[:SHOWN]
    more = len(values) - len(shown)
    return ", ".join(map(repr, shown)) + (f" and {more} more" if more else "")
