"""A compiled, exact evaluator for binary XGBoost tree ensembles (numba, flat arrays).

Why: XGBoost has no cheap one-row entry point. ``inplace_predict`` on a one-row matrix
costs ~0.6 ms (adapter set-up, its OpenMP pool, the prediction cache), far above the
API's budget of tens of microseconds, and an ensemble's XGBoost member would spend it on
every request. Here every node of every tree lives in two contiguous arrays, walked by a
numba-compiled loop: a few microseconds per row, no ``xgboost`` import.

Exactness: XGBoost reads every input as float32 (``static_cast<float>``), sends a NaN
the tree's default way and otherwise goes left when ``fvalue < split_condition`` (both
float32); a leaf's value is stored in its ``split_conditions`` slot. The margin starts
from the base margin (for ``binary:logistic`` the logit of the probability-space
``base_score``, as float32) and adds one leaf per tree, in tree order, in float32 —
what ``CPUPredictor`` does. One row and a matrix go through the same compiled function
(:func:`_margin`), so their numbers are the same bits.

The model is read from XGBoost's own UBJSON file (the artifact's ``xgboost_model.ubj``)
by a small UBJSON decoder here, so a serving process needs no ``xgboost``.
:func:`parse_xgboost` returns None for what the walk does not do — categorical splits,
vector leaves, multi-output, ``dart`` or ``gblinear``, objectives other than
``binary:logistic``. :func:`compile_xgboost` is the same with a check against the booster
on probe rows; training runs it and stores the verdict in the artifact (``compiled``).
"""

from __future__ import annotations

import logging
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from churnops.scoring.trees import rows_in_threads, split_probes

log = logging.getLogger("churnops.scoring")

# Agreement demanded from the self-check, in log-odds. The walk repeats XGBoost's float32
# operations in XGBoost's order, and on every model tried it is bit-identical; the slack
# is for an XGBoost that reorders its float32 sum (e.g. adds the base margin last): each
# reordered addition may move the result by one float32 rounding, ~6e-8 relative, so a
# few hundred trees at margins below ~10 stay well inside 1e-5, while a wrong branch,
# base margin or leaf moves the margin by a leaf value (>= 1e-4 for any useful tree).
CHECK_TOLERANCE = 1e-5

_NUMBERS = {  # UBJSON numeric markers -> big-endian numpy types
    ord("i"): ">i1",
    ord("U"): ">u1",
    ord("I"): ">i2",
    ord("l"): ">i4",
    ord("L"): ">i8",
    ord("d"): ">f4",
    ord("D"): ">f8",
}


@njit(cache=True, nogil=True)
def _step(x32: Any, node: int, nodes: Any, values: Any) -> int:  # pragma: no cover - compiled
    """One level down: left when ``x < condition``, or when ``x`` is NaN and default-left.

    No data-dependent branch (a mispredicted one per level would cost more than the
    steps a shallow leaf repeats); a leaf steps to itself.
    """
    v = x32[nodes[node, 0]]
    left = np.int64(v < np.float32(values[node])) | (np.int64(np.isnan(v)) & nodes[node, 3])
    return nodes[node, 2 - left]


@njit(cache=True, nogil=True)
def _margin(
    x: Any, roots: Any, depths: Any, nodes: Any, values: Any, base: float
) -> float:  # pragma: no cover - compiled
    """One row's margin: XGBoost's float32 decisions and float32 sum, trees in order.

    ``nodes[k]`` = (feature, left, right, default_left) and ``values[k]`` the float32
    condition of a split (held in a float64 array, exactly); a leaf is its own left and
    right child, with its value in ``values[k]``. Four trees are walked at once (four
    independent load chains the CPU overlaps, each ``depths`` steps deep), and their
    leaves are added in tree order, so the float32 sum is XGBoost's.
    """
    x32 = np.empty(x.shape[0], dtype=np.float32)
    for j in range(x.shape[0]):
        x32[j] = np.float32(x[j])
    total = np.float32(base)
    n = roots.shape[0]
    t = 0
    while t + 4 <= n:
        a0, a1, a2, a3 = roots[t], roots[t + 1], roots[t + 2], roots[t + 3]
        depth = max(max(depths[t], depths[t + 1]), max(depths[t + 2], depths[t + 3]))
        for _ in range(depth):
            a0 = _step(x32, a0, nodes, values)
            a1 = _step(x32, a1, nodes, values)
            a2 = _step(x32, a2, nodes, values)
            a3 = _step(x32, a3, nodes, values)
        total += np.float32(values[a0])
        total += np.float32(values[a1])
        total += np.float32(values[a2])
        total += np.float32(values[a3])
        t += 4
    for r in range(t, n):
        a = roots[r]
        for _ in range(depths[r]):
            a = _step(x32, a, nodes, values)
        total += np.float32(values[a])
    return total


@njit(cache=True, nogil=True)
def _unpack(ints: Any, reals: Any) -> tuple[Any, ...]:  # pragma: no cover - compiled
    """:func:`_margin`'s arrays and base, as views of :class:`CompiledXGBoost`'s packed ones."""
    n = ints[0]
    return ints[1 : 1 + n], ints[1 + n : 1 + 2 * n], ints[1 + 2 * n :].reshape(-1, 4), reals[1:]


@njit(cache=True, nogil=True)
def raw_packed(x: Any, ints: Any, reals: Any) -> float:  # pragma: no cover - compiled
    """One row's margin from :attr:`CompiledXGBoost.ints` and ``reals``."""
    roots, depths, nodes, values = _unpack(ints, reals)
    return _margin(x, roots, depths, nodes, values, reals[0])


@njit(cache=True, nogil=True)
def _margins(X: Any, ints: Any, reals: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Each row through :func:`_margin`: the batch's numbers are the one-row numbers."""
    roots, depths, nodes, values = _unpack(ints, reals)
    for i in range(X.shape[0]):
        out[i] = _margin(X[i], roots, depths, nodes, values, reals[0])


@dataclass
class CompiledXGBoost:
    """A binary XGBoost ensemble as flat arrays (see :func:`_margin` for the layout).

    ``roots[t]`` is tree ``t``'s first node and ``depths[t]`` the steps to its deepest
    leaf; ``values`` are float32 (conditions and leaf values exactly as XGBoost stores
    them); ``base`` is the float32 base margin.
    """

    roots: np.ndarray
    depths: np.ndarray
    nodes: np.ndarray
    values: np.ndarray
    base: float
    width: int
    # What the compiled walk reads, in two arrays (each array a call passes costs it
    # ~0.1 µs to unpack): ``ints`` = T, ``roots``, ``depths``, ``nodes`` (flat);
    # ``reals`` = ``base``, ``values`` (float32 numbers, exact in float64).
    ints: np.ndarray = field(init=False, repr=False)
    reals: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = [[len(self.roots)], self.roots, self.depths, self.nodes.reshape(-1)]
        self.ints = np.concatenate(parts).astype(np.int64)
        self.reals = np.concatenate([[self.base], self.values]).astype(np.float64)

    def raw_one(self, row: Any) -> float:
        """Return the margin (log-odds) of one encoded row."""
        return float(raw_packed(np.asarray(row, dtype=np.float64), self.ints, self.reals))

    def raw_many(self, X: np.ndarray) -> np.ndarray:
        """Return the margins of an encoded matrix; each row is :meth:`raw_one`'s number."""
        return rows_in_threads(self._raw_into, X)

    def _raw_into(self, X: np.ndarray, out: np.ndarray) -> None:
        _margins(X, self.ints, self.reals, out)

    def split_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return every split's feature and condition (float64), for probe rows."""
        splits = self.nodes[:, 1] != np.arange(len(self.nodes))  # leaves point to themselves
        return self.nodes[splits, 0], self.values[splits].astype(np.float64)


def parse_xgboost(
    model: bytes, width: int, iteration_range: tuple[int, int]
) -> CompiledXGBoost | None:
    """Return the compiled form of a binary XGBoost UBJSON model, or None when unsupported.

    ``iteration_range`` is ``predict``'s: boosting rounds ``[begin, end)``, all when
    ``end`` is 0. Needs no ``xgboost`` import.
    """
    try:
        return _parse(read_ubjson(model), width, iteration_range)
    except (ValueError, KeyError, IndexError, TypeError, struct.error) as exc:
        log.warning("XGBoost model not compiled, using XGBoost's predict: %s", exc)
        return None


def compile_xgboost(
    booster: Any, width: int, iteration_range: tuple[int, int]
) -> CompiledXGBoost | None:
    """Return the compiled form of a binary XGBoost booster, verified, or None.

    Checked against ``booster.inplace_predict(predict_type="margin")`` on probe rows (each
    split's condition and its float32 and float64 neighbours, zeros, NaNs, deep mixed rows
    with and without missing values) to ``CHECK_TOLERANCE``, and one row against the batch
    bit for bit; any disagreement returns None, and the caller keeps XGBoost's predict.
    """
    compiled = parse_xgboost(bytes(booster.save_raw("ubj")), width, iteration_range)
    if compiled is None:
        return None
    features, conditions = compiled.split_arrays()
    probes = split_probes(width, features, conditions, np.float32)
    holes = probes[-200:].copy()  # the mixed rows, with some values missing
    holes[np.random.default_rng(1).random(holes.shape) < 0.2] = np.nan
    probes = np.vstack([probes, holes])
    expected = np.asarray(
        booster.inplace_predict(
            probes, iteration_range=iteration_range, predict_type="margin", missing=np.nan
        ),
        dtype=np.float64,
    ).reshape(-1)
    got = compiled.raw_many(probes)
    picks = np.r_[0:8, len(probes) - 8 : len(probes)]
    one = np.array([compiled.raw_one(probes[i]) for i in picks])
    if not (
        np.allclose(got, expected, rtol=0, atol=CHECK_TOLERANCE) and np.array_equal(one, got[picks])
    ):
        worst = float(np.max(np.abs(got - expected)))
        log.warning("compiled XGBoost trees disagree with XGBoost (%.3g); using its predict", worst)
        return None
    return compiled


def base_margin(base_score: float) -> float:
    """``binary:logistic``'s ``ProbToMargin``: ``-log(1/p - 1)`` in float32, as XGBoost."""
    p = np.float32(base_score)
    if not 0.0 < p < 1.0:
        raise ValueError(f"base_score {base_score} is not a probability")
    return float(np.float32(-math.log(float(np.float32(np.float32(1.0) / p - np.float32(1.0))))))


def _parse(
    doc: dict[str, Any], width: int, iteration_range: tuple[int, int]
) -> CompiledXGBoost | None:
    """Build the flat arrays from the decoded model (None for unsupported models)."""
    learner = doc["learner"]
    param = learner["learner_model_param"]
    booster = learner["gradient_booster"]
    if (
        learner["objective"]["name"] != "binary:logistic"
        or booster["name"] != "gbtree"
        or int(param.get("num_class", "0")) > 1
        or int(param.get("num_target", "1")) != 1
        or int(param["num_feature"]) != width
    ):
        return None
    scores = str(param["base_score"]).strip("[]").split(",")
    if len(scores) != 1:
        return None
    base = base_margin(float(scores[0]))
    model = booster["model"]
    trees = model["trees"]
    indptr = [int(i) for i in model.get("iteration_indptr", [])] or list(range(len(trees) + 1))
    begin, end = iteration_range
    end = end if end > 0 else len(indptr) - 1
    if not 0 <= begin <= end < len(indptr) or any(int(g) != 0 for g in model["tree_info"]):
        return None
    roots: list[int] = []
    depths: list[int] = []
    nodes: list[np.ndarray] = []
    values: list[np.ndarray] = []
    count = 0
    for tree in trees[indptr[begin] : indptr[end]]:
        if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
            return None
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        feature = np.asarray(tree["split_indices"], dtype=np.int64)
        split = left >= 0
        if np.any(np.asarray(tree["split_type"])[split] != 0):
            return None  # a categorical split
        if np.any((feature[split] < 0) | (feature[split] >= width)):
            return None
        if np.any(split != (right >= 0)) or np.any(left[split] >= len(left)):
            raise ValueError("malformed tree children")
        block = np.empty((len(left), 4), dtype=np.int64)
        own = np.arange(len(left)) + count  # a leaf steps to itself
        block[:, 0] = np.where(split, feature, 0)
        block[:, 1] = np.where(split, left + count, own)
        block[:, 2] = np.where(split, right + count, own)
        block[:, 3] = split & (np.asarray(tree["default_left"], dtype=np.int64) != 0)
        nodes.append(block)
        values.append(np.asarray(tree["split_conditions"], dtype=np.float32))
        roots.append(count)
        depths.append(_depth(left, right))
        count += len(left)
    if not roots:
        return None
    return CompiledXGBoost(
        roots=np.array(roots, dtype=np.int64),
        depths=np.array(depths, dtype=np.int64),
        nodes=np.ascontiguousarray(np.vstack(nodes).astype(np.int32)),
        values=np.ascontiguousarray(np.concatenate(values)),
        base=base,
        width=width,
    )


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Return the steps from node 0 to the deepest leaf (a child index < 0 is no child)."""
    level, depth = [0], 0
    while True:
        below = [c for n in level for c in (int(left[n]), int(right[n])) if c >= 0]
        if not below:
            return depth
        if depth > len(left):
            raise ValueError("tree children form a cycle")
        level, depth = below, depth + 1


def read_ubjson(data: bytes) -> Any:
    """Decode UBJSON (what ``Booster.save_model("*.ubj")`` writes) without ``xgboost``.

    Typed numeric arrays (``[$d#L…``, all of a tree's arrays) become numpy arrays in one
    ``frombuffer``; floats stay the float32 bits XGBoost stored.
    """
    value, end = _value(memoryview(data), 0)
    if end != len(data):
        raise ValueError("trailing bytes after the UBJSON value")
    return value


def _value(buf: memoryview, pos: int, marker: int | None = None) -> tuple[Any, int]:
    if marker is None:
        marker, pos = buf[pos], pos + 1
        while marker == ord("N"):  # no-op
            marker, pos = buf[pos], pos + 1
    if marker in _NUMBERS:
        dtype = np.dtype(_NUMBERS[marker])
        number = np.frombuffer(buf, dtype=dtype, count=1, offset=pos)[0]
        return number.item(), pos + dtype.itemsize
    if marker == ord("S") or marker == ord("H"):
        size, pos = _value(buf, pos)
        return bytes(buf[pos : pos + size]).decode(), pos + size
    if marker == ord("C"):
        return chr(buf[pos]), pos + 1
    if marker == ord("T") or marker == ord("F"):
        return marker == ord("T"), pos
    if marker == ord("Z"):
        return None, pos
    if marker == ord("["):
        return _array(buf, pos)
    if marker == ord("{"):
        return _object(buf, pos)
    raise ValueError(f"unknown UBJSON marker {chr(marker)!r} at byte {pos - 1}")


def _container(buf: memoryview, pos: int) -> tuple[int | None, int | None, int]:
    """Read an optimized container's ``$type`` and ``#count`` (None when absent)."""
    kind = count = None
    if buf[pos] == ord("$"):
        kind, pos = buf[pos + 1], pos + 2
    if buf[pos] == ord("#"):
        count, pos = _value(buf, pos + 1)
    elif kind is not None:
        raise ValueError("UBJSON container with a type but no count")
    return kind, count, pos


def _more(buf: memoryview, pos: int, count: int | None, seen: int, close: str) -> bool:
    """Whether a container has another item: by its count, else until its closing marker."""
    return buf[pos] != ord(close) if count is None else seen < count


def _array(buf: memoryview, pos: int) -> tuple[Any, int]:
    kind, count, pos = _container(buf, pos)
    if kind in _NUMBERS and count is not None:
        dtype = np.dtype(_NUMBERS[kind])
        out = np.frombuffer(buf, dtype=dtype, count=count, offset=pos)
        return out.astype(dtype.newbyteorder("=")), pos + count * dtype.itemsize
    items: list[Any] = []
    while _more(buf, pos, count, len(items), "]"):
        item, pos = _value(buf, pos, kind)
        items.append(item)
    return items, pos + 1 if count is None else pos


def _object(buf: memoryview, pos: int) -> tuple[dict[str, Any], int]:
    kind, count, pos = _container(buf, pos)
    out: dict[str, Any] = {}
    while _more(buf, pos, count, len(out), "}"):
        size, pos = _value(buf, pos)  # keys are strings without their "S" marker
        key = bytes(buf[pos : pos + size]).decode()
        out[key], pos = _value(buf, pos + size, kind)
    return out, pos + 1 if count is None else pos
