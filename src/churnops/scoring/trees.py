"""A compiled, exact evaluator for LightGBM binary ensembles (numba, flat arrays).

Why: LightGBM keeps each tree's nodes in separate heap vectors and its single-row C entry
point costs ~7 µs for the demo's ~440 trees when the CPU caches are warm, but 30-80 µs on
a busy server, where the API's own work evicts those scattered vectors between requests.
Its matrix ``predict`` also pays per-call setup and thread start-up. Here every split of
every tree lives in three contiguous arrays (~20 bytes a node), walked by a numba-compiled
loop: a few microseconds per row. Matrices (batch scoring: a million rows in well under
a second on two cores) are walked in small row blocks that stay in cache, trees in the
outer loop within a block, several rows in flight at once, and split over threads.

Exactness: the walk is LightGBM's ``Tree::NumericalDecision`` (missing-value types
None/Zero/NaN, default-left, ``fval <= threshold`` in double precision, thresholds read
from the model text, which prints them round-trip exact) and the raw score is summed tree
by tree in the same order as ``GBDT::PredictRaw``; the probability is the same sigmoid.
:func:`parse_lightgbm` builds the arrays from the model text alone (so a serving process
needs no ``lightgbm`` import) and returns None for anything else — categorical splits,
linear trees, multiclass, averaged (random-forest) output, objectives other than
``binary``; callers then keep LightGBM's own predict. :func:`compile_lightgbm` is the same
with a self-check against the booster: training runs it once before the model is saved,
and records the verdict in the artifact, so the walk is checked where LightGBM is at hand.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

log = logging.getLogger("churnops.scoring")

# LightGBM's decision_type bits (include/LightGBM/tree.h) and zero threshold (meta.h,
# a float literal: ``const double kZeroThreshold = 1e-35f``).
_CATEGORICAL_MASK = 1
_DEFAULT_LEFT_MASK = 2
_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2
ZERO_THRESHOLD = float(np.float32(1e-35))
CHECK_TOLERANCE = 1e-12  # raw-score agreement demanded from the self-check
ROW_BLOCK = 128  # rows walked together: their cleaned copy (~40 kB at 40 columns) stays near L1
PARALLEL_ROWS = 2048  # fewer rows than this per thread are scored on the calling thread
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@njit(cache=True, nogil=True)
def _walk(x: Any, root: int, nodes: Any, thresholds: Any, leaves: Any, zero: float) -> float:
    """LightGBM's general decision: missing-value types None, Zero and NaN."""
    node = root
    while node >= 0:
        fval = x[nodes[node, 0]]
        if -zero <= fval <= zero:  # LightGBM's dense-row reader drops these as zeros
            fval = 0.0
        flags = nodes[node, 3]
        missing = flags >> 1
        if missing != _MISSING_NAN and np.isnan(fval):
            fval = 0.0
        if (missing == _MISSING_ZERO and fval == 0.0) or (
            missing == _MISSING_NAN and np.isnan(fval)
        ):
            node = nodes[node, 1] if flags & 1 else nodes[node, 2]
        elif fval <= thresholds[node]:
            node = nodes[node, 1]
        else:
            node = nodes[node, 2]
    return leaves[-node - 1]


@njit(cache=True, nogil=True)
def _clean_into(x: Any, out: Any, zero: float) -> None:
    """With missing type None everywhere, NaN and |v| <= 1e-35 both act as 0.0."""
    for j in range(x.shape[0]):
        v = x[j]
        out[j] = 0.0 if np.isnan(v) or -zero <= v <= zero else v


@njit(cache=True, nogil=True)
def _raw_matrix(
    X: Any, roots: Any, nodes: Any, thresholds: Any, leaves: Any, zero: float, out: Any
) -> None:
    """Add each row's raw score to ``out`` with the general walk, in blocks of rows.

    Within a block of ``ROW_BLOCK`` rows (in L2) the trees are the outer loop, so one tree
    stays in L1 for all of them; going tree by tree over the whole matrix instead would
    stream it from memory once per tree.
    """
    n = X.shape[0]
    for start in range(0, n, ROW_BLOCK):
        stop = min(n, start + ROW_BLOCK)
        for t in range(roots.shape[0]):
            for i in range(start, stop):
                out[i] += _walk(X[i], roots[t], nodes, thresholds, leaves, zero)


@njit(cache=True, nogil=True)
def _step(C: Any, r: int, node: int, packed: Any, cuts: Any) -> int:
    """One level down for row ``r``: the left child, plus one when the value is above the cut."""
    code = packed[node]
    return (code >> 32) + np.int64(C[r, code & 0xFFFFFFFF] > cuts[node])


@njit(cache=True, nogil=True)
def _raw_matrix_plain(
    X: Any, zero: float, roots: Any, depths: Any, packed: Any, cuts: Any, values: Any, out: Any
) -> None:
    """Add each row's raw score to ``out`` when every split has missing type None.

    Rows go in blocks of ``ROW_BLOCK``, cleaned into a buffer that stays in cache, and
    each tree walks eight rows at once, a fixed ``depths[t]`` steps each (leaves step to
    themselves, see :class:`CompiledTrees`): eight independent load chains the CPU
    overlaps, and no data-dependent branch. Each row sums its trees in order, so the
    scores are the same bits as :func:`_raw_one_plain`'s.
    """
    n = X.shape[0]
    C = np.empty((min(n, ROW_BLOCK), X.shape[1]))
    for start in range(0, n, ROW_BLOCK):
        rows = min(ROW_BLOCK, n - start)
        for r in range(rows):
            _clean_into(X[start + r], C[r], zero)
        for t in range(roots.shape[0]):
            root, depth = roots[t], depths[t]
            r = 0
            while r + 8 <= rows:
                a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = root
                for _ in range(depth):
                    a0 = _step(C, r, a0, packed, cuts)
                    a1 = _step(C, r + 1, a1, packed, cuts)
                    a2 = _step(C, r + 2, a2, packed, cuts)
                    a3 = _step(C, r + 3, a3, packed, cuts)
                    a4 = _step(C, r + 4, a4, packed, cuts)
                    a5 = _step(C, r + 5, a5, packed, cuts)
                    a6 = _step(C, r + 6, a6, packed, cuts)
                    a7 = _step(C, r + 7, a7, packed, cuts)
                for k, leaf in enumerate((a0, a1, a2, a3, a4, a5, a6, a7)):
                    out[start + r + k] += values[leaf]
                r += 8
            for j in range(r, rows):
                a = root
                for _ in range(depth):
                    a = _step(C, j, a, packed, cuts)
                out[start + j] += values[a]


@njit(cache=True, nogil=True)
def _raw_one_plain(
    x: Any, zero: float, roots: Any, depths: Any, packed: Any, cuts: Any, values: Any
) -> float:
    """One row's raw score on the matrix walk's layout, four trees at a time.

    A tree's walk is a chain of dependent loads (node, then the row's value, then the
    child); four trees in flight let the CPU overlap four chains, where one tree after
    the other waits on each load. The leaves are added in tree order, so the score is
    the same bits as :func:`_raw_matrix_plain`'s for this row.
    """
    C = np.empty((1, x.shape[0]))
    _clean_into(x, C[0], zero)
    total = 0.0
    n = roots.shape[0]
    t = 0
    while t + 4 <= n:
        a0, a1, a2, a3 = roots[t], roots[t + 1], roots[t + 2], roots[t + 3]
        depth = max(max(depths[t], depths[t + 1]), max(depths[t + 2], depths[t + 3]))
        for _ in range(depth):
            a0 = _step(C, 0, a0, packed, cuts)
            a1 = _step(C, 0, a1, packed, cuts)
            a2 = _step(C, 0, a2, packed, cuts)
            a3 = _step(C, 0, a3, packed, cuts)
        total += values[a0]
        total += values[a1]
        total += values[a2]
        total += values[a3]
        t += 4
    for r in range(t, n):
        a = roots[r]
        for _ in range(depths[r]):
            a = _step(C, 0, a, packed, cuts)
        total += values[a]
    return total


@njit(cache=True, nogil=True)
def raw_packed(x: Any, ints: Any, reals: Any) -> float:  # pragma: no cover - compiled
    """One row's raw score from :attr:`CompiledTrees.ints` and ``reals`` (layout there)."""
    n = ints[1]
    roots = ints[2 : 2 + n]
    if ints[0] == 1:
        depths = ints[2 + n : 2 + 2 * n]
        packed = ints[2 + 2 * n :]
        k = packed.shape[0]
        return _raw_one_plain(x, ZERO_THRESHOLD, roots, depths, packed, reals[:k], reals[k:])
    nodes = ints[2 + n :].reshape(-1, 4)
    m = nodes.shape[0]
    total = 0.0
    for t in range(n):
        total += _walk(x, roots[t], nodes, reals[:m], reals[m:], ZERO_THRESHOLD)
    return total


def rows_in_threads(kernel: Callable[[np.ndarray, np.ndarray], None], X: np.ndarray) -> np.ndarray:
    """Return ``out`` (zeros, one per row) after ``kernel(X_part, out_part)`` on row ranges.

    From ``PARALLEL_ROWS`` rows on, the rows are split over one thread per core, each
    running a compiled loop without the GIL. Plain threads rather than numba's
    ``parallel=True``: its OpenMP layer (the one available here) must not be used before
    a ``fork`` and its fallback layer aborts when two threads call in at once; batch jobs,
    the API's thread pool and forked workers all score. Smaller batches (the API's) stay
    on the calling thread, where starting threads would cost more. Each row is computed
    by the same kernel whatever the split, so the numbers do not depend on it.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    out = np.zeros(X.shape[0])
    parts = min(_CORES, X.shape[0] // PARALLEL_ROWS)
    bounds = np.linspace(0, X.shape[0], max(parts, 1) + 1).astype(int).tolist()
    threads = [
        threading.Thread(target=kernel, args=(X[lo:hi], out[lo:hi]))
        for lo, hi in itertools.pairwise(bounds[1:])
    ]
    for thread in threads:
        thread.start()
    kernel(X[: bounds[1]], out[: bounds[1]])
    for thread in threads:
        thread.join()
    return out


@dataclass
class CompiledTrees:
    """A LightGBM binary ensemble as flat arrays, evaluated by compiled loops.

    ``nodes[k]`` = (feature, left, right, flags) of split ``k`` over all trees, where a
    child ``>= 0`` is a split and ``< 0`` is leaf ``-child - 1`` of ``leaves``; flags bit 0
    is default-left and bits 1-2 the missing-value type. ``roots[t]`` is tree ``t``'s first
    node (a leaf reference for a one-leaf tree).
    """

    roots: np.ndarray
    nodes: np.ndarray
    thresholds: np.ndarray
    leaves: np.ndarray
    sigmoid: float
    width: int
    plain: bool = False  # every split has missing type None: the cheaper walk applies
    # The layout of the plain matrix walk (built here, not parsed): each tree's nodes in
    # breadth-first order so a split's two children are adjacent, leaves included as
    # nodes that step to themselves (cut +inf; cleaned rows hold no NaN, so ``x > cut``
    # is False). ``packed[k]`` = first child << 32 | feature, ``values`` the leaf values
    # (0 for splits), ``depths[t]`` the steps from tree ``t``'s root to its deepest leaf.
    step_roots: np.ndarray = field(init=False, repr=False)
    depths: np.ndarray = field(init=False, repr=False)
    packed: np.ndarray = field(init=False, repr=False)
    cuts: np.ndarray = field(init=False, repr=False)
    values: np.ndarray = field(init=False, repr=False)
    # One row's walk reads two arrays (:func:`raw_packed`), each call's array arguments
    # being what it costs to enter compiled code: ``ints`` = plain (1 or 0), the tree
    # count T, then for a plain model ``step_roots``, ``depths``, ``packed`` and
    # ``reals`` = ``cuts``, ``values``; otherwise ``roots``, ``nodes`` (flat) and
    # ``reals`` = ``thresholds``, ``leaves``.
    ints: np.ndarray = field(init=False, repr=False)
    reals: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.plain = bool(np.all((self.nodes[:, 3] >> 1) == _MISSING_NONE))
        features, children, cuts, values, roots, depths = [], [], [], [], [], []
        for root in self.roots.tolist():
            roots.append(len(features))
            level, depth = [root], 0
            while True:
                first = len(features) + len(level)  # where this level's children start
                below = []
                for node in level:
                    if node >= 0:
                        features.append(int(self.nodes[node, 0]))
                        children.append(first + len(below))
                        cuts.append(float(self.thresholds[node]))
                        values.append(0.0)
                        below += self.nodes[node, 1:3].tolist()
                    else:
                        features.append(0)
                        children.append(len(features) - 1)
                        cuts.append(math.inf)
                        values.append(float(self.leaves[-node - 1]))
                if not below:
                    break
                level, depth = below, depth + 1
            depths.append(depth)
        self.step_roots = np.array(roots, dtype=np.int64)
        self.depths = np.array(depths, dtype=np.int64)
        self.packed = (np.array(children, dtype=np.int64) << 32) | np.array(features)
        self.cuts = np.array(cuts, dtype=np.float64)
        self.values = np.array(values, dtype=np.float64)
        head = [int(self.plain), len(self.roots)]
        if self.plain:
            self.ints = np.concatenate([head, self.step_roots, self.depths, self.packed])
            self.reals = np.concatenate([self.cuts, self.values])
        else:
            self.ints = np.concatenate([head, self.roots, self.nodes.reshape(-1)]).astype(np.int64)
            self.reals = np.concatenate([self.thresholds, self.leaves])

    def raw_one(self, row: Any) -> float:
        """Return the raw score (log-odds) of one encoded row."""
        return float(raw_packed(np.asarray(row, dtype=np.float64), self.ints, self.reals))

    def raw_many(self, X: np.ndarray) -> np.ndarray:
        """Return the raw scores of an encoded matrix (rows split over threads, see below)."""
        return rows_in_threads(self._raw_into, X)

    def _raw_into(self, X: np.ndarray, out: np.ndarray) -> None:
        if self.plain:
            _raw_matrix_plain(
                X,
                ZERO_THRESHOLD,
                self.step_roots,
                self.depths,
                self.packed,
                self.cuts,
                self.values,
                out,
            )
        else:
            _raw_matrix(
                X, self.roots, self.nodes, self.thresholds, self.leaves, ZERO_THRESHOLD, out
            )


def parse_lightgbm(text: str, width: int, num_iteration: int = 0) -> CompiledTrees | None:
    """Return the compiled form of a binary LightGBM model text, or None when unsupported.

    Needs no ``lightgbm`` import: the text is all there is to the model. ``num_iteration``
    > 0 keeps only the first trees (LightGBM's ``best_iteration``), as ``predict`` does.
    """
    try:
        return _parse(text, width, num_iteration)
    except (ValueError, KeyError, IndexError) as exc:
        log.warning("LightGBM model not compiled, using LightGBM's predict: %s", exc)
        return None


def compile_lightgbm(booster: Any, width: int, num_iteration: int | None) -> CompiledTrees | None:
    """Return the compiled form of a binary LightGBM booster, or None when unsupported.

    The result is checked against ``booster.predict(raw_score=True)`` on probe rows
    (zeros, NaNs, each split's threshold and its neighbours); any disagreement beyond
    ``CHECK_TOLERANCE`` returns None so the caller keeps LightGBM's own path.
    """
    compiled = parse_lightgbm(booster.model_to_string(num_iteration=-1), width, num_iteration or 0)
    if compiled is None:
        return None
    probes = _probes(compiled)
    expected = np.asarray(
        booster.predict(probes, raw_score=True, num_iteration=num_iteration or -1),
        dtype=np.float64,
    )
    got = compiled.raw_many(probes)
    one = np.array([compiled.raw_one(row) for row in probes[:8]])
    if not (
        np.allclose(got, expected, rtol=0, atol=CHECK_TOLERANCE)
        and np.allclose(one, expected[:8], rtol=0, atol=CHECK_TOLERANCE)
    ):
        log.warning("compiled LightGBM trees disagree with LightGBM; using LightGBM's predict")
        return None
    return compiled


def binary_sigmoid(text: str) -> float | None:
    """Return the sigmoid scale of a ``binary`` LightGBM model text; None for other objectives.

    LightGBM's probability is ``1 / (1 + exp(-sigmoid * raw))``; the scale is 1 unless the
    model was trained with ``sigmoid=...``.
    """
    objective = _fields(text.partition("\nTree=")[0]).get("objective", "").split()
    if not objective or objective[0] != "binary":
        return None
    sigmoid = 1.0
    for option in objective[1:]:
        if option.startswith("sigmoid:"):
            sigmoid = float(option.split(":", 1)[1])
    return sigmoid


def _parse(text: str, width: int, num_iteration: int) -> CompiledTrees | None:
    """Build the flat arrays from LightGBM's model text (None for unsupported models)."""
    header, _, body = text.partition("\nTree=")
    head = _fields(header)
    sigmoid = binary_sigmoid(text)
    if (
        sigmoid is None
        or head.get("num_class", "1") != "1"
        or head.get("num_tree_per_iteration", "1") != "1"
        or "average_output" in head
        or int(head.get("max_feature_idx", "-1")) + 1 != width
    ):
        return None
    body = body.split("\nend of trees", 1)[0]
    roots: list[int] = []
    nodes: list[tuple[int, int, int, int]] = []
    thresholds: list[float] = []
    leaves: list[float] = []
    chunks = ("Tree=" + body).split("\nTree=")
    for chunk in chunks[:num_iteration] if num_iteration > 0 else chunks:
        tree = _fields(chunk)
        if int(tree.get("num_cat", "0")) != 0 or tree.get("is_linear", "0") != "0":
            return None
        values = [float(v) for v in tree["leaf_value"].split()]
        n_leaves = int(tree["num_leaves"])
        if len(values) != n_leaves:
            raise ValueError("leaf count mismatch")
        node0, leaf0 = len(nodes), len(leaves)
        leaves.extend(values)
        if n_leaves == 1:
            roots.append(-(leaf0 + 1))
            continue
        features = [int(v) for v in tree["split_feature"].split()]
        cuts = [float(v) for v in tree["threshold"].split()]
        kinds = [int(v) for v in tree["decision_type"].split()]
        lefts = [int(v) for v in tree["left_child"].split()]
        rights = [int(v) for v in tree["right_child"].split()]
        if not len(features) == len(cuts) == len(kinds) == len(lefts) == len(rights):
            raise ValueError("split arrays of different lengths")

        def child(c: int, node0: int = node0, leaf0: int = leaf0) -> int:
            return node0 + c if c >= 0 else -(leaf0 + (-c - 1) + 1)

        for f, cut, kind, left, right in zip(features, cuts, kinds, lefts, rights, strict=True):
            if kind & _CATEGORICAL_MASK or not 0 <= f < width:
                return None
            missing = (kind >> 2) & 3
            flags = (missing << 1) | (1 if kind & _DEFAULT_LEFT_MASK else 0)
            nodes.append((f, child(left), child(right), flags))
            thresholds.append(cut)
        roots.append(node0)
    if not roots:
        return None
    return CompiledTrees(
        roots=np.array(roots, dtype=np.int32),
        nodes=np.array(nodes, dtype=np.int32).reshape(-1, 4),
        thresholds=np.array(thresholds, dtype=np.float64),
        leaves=np.array(leaves, dtype=np.float64),
        sigmoid=sigmoid,
        width=width,
    )


def _fields(chunk: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in chunk.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _probes(compiled: CompiledTrees, limit: int = 2000) -> np.ndarray:
    """Rows that exercise every split: zeros, NaNs, and each threshold ± one ulp."""
    return split_probes(compiled.width, compiled.nodes[:, 0], compiled.thresholds, limit=limit)


def split_probes(
    width: int,
    features: np.ndarray,
    thresholds: np.ndarray,
    precision: type[np.floating[Any]] = np.float64,
    limit: int = 2000,
) -> np.ndarray:
    """Rows that exercise splits (``features[k]`` at ``thresholds[k]``) of any tree family.

    Zeros, NaNs, ones, minus ones; each threshold and its float64 neighbours (and, for a
    family that compares in float32 — ``precision`` — its float32 neighbours, since a
    float64 neighbour rounds back onto a float32 threshold); then mixed rows with a random
    threshold (or a neighbour) on every feature at once, to walk deep paths.
    """
    rows = [np.zeros(width), np.full(width, np.nan), np.ones(width), np.full(width, -1.0)]
    rng = np.random.default_rng(0)
    pairs = list(zip(np.asarray(features).tolist(), np.asarray(thresholds).tolist(), strict=True))
    rng.shuffle(pairs)
    base = np.zeros(width)
    for f, cut in pairs[: limit // 3]:
        values = [cut, np.nextafter(cut, -np.inf), np.nextafter(cut, np.inf)]
        if precision is not np.float64:
            narrow = precision(cut)
            values += [float(np.nextafter(narrow, -np.inf)), float(np.nextafter(narrow, np.inf))]
        for value in dict.fromkeys(values):
            row = base.copy()
            row[f] = value
            rows.append(row)
    # Mixed rows: random thresholds on every feature at once, to walk deep paths.
    cuts_by_feature: dict[int, list[float]] = {}
    for f, cut in pairs:
        cuts_by_feature.setdefault(f, []).append(cut)
    mixed = np.zeros((200, width))
    for f, cuts in cuts_by_feature.items():  # one column at a time, 200 rows at once
        picked = np.asarray(cuts)[rng.integers(len(cuts), size=len(mixed))]
        step = rng.choice([-1.0, 0.0, 1.0], size=len(mixed))
        if precision is np.float64:
            mixed[:, f] = picked + step * np.abs(picked) * 1e-9
        else:  # a relative 1e-9 is below float32's resolution: step by its ulp
            narrow = picked.astype(precision)
            mixed[:, f] = np.nextafter(narrow, narrow + step.astype(precision))
    return np.vstack([np.array(rows, dtype=np.float64), mixed])
