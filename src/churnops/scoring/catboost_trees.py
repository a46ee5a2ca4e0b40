"""CatBoost's oblivious trees as flat arrays, walked by compiled code, exact to CatBoost.

Why: CatBoost's own ``predict`` builds a ``Pool`` per call, ~0.3-0.7 ms for one row, far
above the API's budget of tens of microseconds. Its trees are *oblivious* (every node of a
level asks the same question), so one row is cheap to score by hand: answer each distinct
question once (a bit per split), then each tree's leaf is the number those bits spell
(split ``d`` of a tree is bit ``d`` of its leaf index) — a few microseconds.

How categoricals reach CatBoost (:class:`CodeLayout`): the encoder writes a categorical as
a one-hot block; CatBoost gets the block as one integer column (the level's position, -1
for none), declared categorical, and splits on it its own way: one-hot splits on a level
for a small column, target statistics (CTRs) for a large one. Training limits CTRs to
single columns (``max_ctr_complexity=1``); then every categorical split depends on one
column's level alone, and a column has a few known levels. So each such split becomes a
lookup table, level -> bit, *read from CatBoost itself*:
:func:`compile_catboost` scores probe rows that vary one column's level at a time with
``calc_leaf_indexes`` and takes each split's bit from the leaf index. No CTR arithmetic or
CatBoost string hashing is re-implemented; the tables are data in the artifact.

Numbers: CatBoost reads features as float32 and splits on ``value > border`` (borders are
float32, printed exactly in its JSON); NaN goes right only for ``nan_value_treatment``
``AsTrue``. The raw score is ``scale * Σ leaf + bias``, summed tree by tree in CatBoost's
order. :func:`compile_catboost` checks all of it against CatBoost on probe rows (every
border and its neighbours, NaNs, every level) and returns None on any disagreement beyond
``CHECK_TOLERANCE``, so the caller keeps CatBoost's own ``predict``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from churnops.scoring.trees import CHECK_TOLERANCE, rows_in_threads

log = logging.getLogger("churnops.scoring")

_ABOVE, _ABOVE_OR_NAN, _TABLE = 0, 1, 2  # split kinds: float split, NaN goes right, level table


@dataclass(frozen=True)
class CodeLayout:
    """How an encoded matrix becomes CatBoost's input: numbers, then one code per block.

    ``blocks`` are the encoder's one-hot blocks as ``(start, width)``; every other encoded
    column is a number, passed on in order. A block's code is the position of its first
    non-zero column, or -1 when none is set (a level the contract maps to no column).
    """

    width: int
    blocks: tuple[tuple[int, int], ...]
    dense: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        numeric = np.ones(self.width, dtype=bool)
        for start, width in self.blocks:
            numeric[start : start + width] = False
        object.__setattr__(self, "dense", np.flatnonzero(numeric))

    @property
    def cat_names(self) -> list[str]:
        """The code columns' names (what CatBoost is told is categorical)."""
        return [f"c{k}" for k in range(len(self.blocks))]

    def codes(self, X: np.ndarray) -> np.ndarray:
        """Return each row's code per block, ``(n, blocks)`` int64."""
        out = np.full((X.shape[0], len(self.blocks)), -1, dtype=np.int64)
        for k, (start, width) in enumerate(self.blocks):
            hot = X[:, start : start + width] != 0
            out[:, k] = np.where(hot.any(axis=1), hot.argmax(axis=1), -1)
        return out

    def frame(self, X: np.ndarray) -> pd.DataFrame:
        """Return CatBoost's input for an encoded matrix: numbers ``x<j>``, codes ``c<k>``."""
        data: dict[str, Any] = {f"x{j}": X[:, j] for j in self.dense.tolist()}
        data.update(zip(self.cat_names, self.codes(X).T, strict=True))
        return pd.DataFrame(data)

    def pool(self, X: np.ndarray) -> Any:
        """Return ``X`` as a ``catboost.Pool`` with the code columns declared categorical."""
        from catboost import Pool

        return Pool(self.frame(X), cat_features=self.cat_names)


# The parts of ObliviousTrees.ints, in order (part ``k`` starts at ``at[k]``).
_KINDS, _COLUMNS, _OFFSETS, _TABLES, _BLOCKS, _DEPTHS, _SPLITS, _STARTS = range(8)


@njit(cache=True, nogil=True)
def _margin(
    x: Any,
    kinds: Any,
    columns: Any,
    borders: Any,
    offsets: Any,
    tables: Any,
    blocks: Any,
    depths: Any,
    tree_splits: Any,
    leaf_starts: Any,
    leaves: Any,
    scale: float,
    bias: float,
    codes: Any,
    bits: Any,
) -> float:  # pragma: no cover - compiled
    """One row's raw score: every split's bit once, then each tree's leaf from its bits."""
    for b in range(blocks.shape[0]):
        start = blocks[b, 0]
        code = -1
        for i in range(blocks[b, 1]):
            if x[start + i] != 0.0:
                code = i
                break
        codes[b] = code
    for s in range(kinds.shape[0]):
        kind = kinds[s]
        if kind == _TABLE:
            bits[s] = tables[offsets[s] + codes[columns[s]] + 1]
        else:
            value = x[columns[s]]
            bits[s] = np.float32(value) > borders[s] or (kind == _ABOVE_OR_NAN and np.isnan(value))
    total = 0.0
    k = 0
    for t in range(depths.shape[0]):
        index = 0
        for d in range(depths[t]):
            index |= np.int64(bits[tree_splits[k]]) << d
            k += 1
        total += leaves[leaf_starts[t] + index]
    return scale * total + bias


@njit(cache=True, nogil=True)
def _parts(ints: Any, reals: Any) -> tuple[Any, ...]:  # pragma: no cover - compiled
    """The arrays :func:`_margin` reads, as views of :class:`ObliviousTrees`' packed arrays."""
    at = ints[: _STARTS + 2] + _STARTS + 2  # where each part starts, after ``at`` itself
    splits = at[_COLUMNS] - at[_KINDS]
    return (
        ints[at[_KINDS] : at[_COLUMNS]],
        ints[at[_COLUMNS] : at[_OFFSETS]],
        reals[2 : 2 + splits],  # float32 borders, exact in float64: the same test as CatBoost's
        ints[at[_OFFSETS] : at[_TABLES]],
        ints[at[_TABLES] : at[_BLOCKS]],
        ints[at[_BLOCKS] : at[_DEPTHS]].reshape(-1, 2),
        ints[at[_DEPTHS] : at[_SPLITS]],
        ints[at[_SPLITS] : at[_STARTS]],
        ints[at[_STARTS] : at[_STARTS + 1]],
        reals[2 + splits :],
        reals[0],
        reals[1],
    )


@njit(cache=True, nogil=True)
def raw_packed(x: Any, ints: Any, reals: Any) -> float:  # pragma: no cover - compiled
    """One row's raw score from :attr:`ObliviousTrees.ints` and ``reals``."""
    parts = _parts(ints, reals)
    codes = np.empty(parts[5].shape[0], dtype=np.int64)
    bits = np.empty(parts[0].shape[0], dtype=np.uint8)
    return _margin(x, *parts, codes, bits)


@njit(cache=True, nogil=True)
def _margins(X: Any, ints: Any, reals: Any, out: Any) -> None:  # pragma: no cover - compiled
    parts = _parts(ints, reals)
    codes = np.empty(parts[5].shape[0], dtype=np.int64)
    bits = np.empty(parts[0].shape[0], dtype=np.uint8)
    for i in range(X.shape[0]):
        out[i] = _margin(X[i], *parts, codes, bits)


@dataclass
class ObliviousTrees:
    """A binary CatBoost model as flat arrays (see the module docstring).

    Split ``s`` is ``kinds[s]``: a float split of encoded column ``columns[s]`` at
    ``borders[s]``, or a table of block ``columns[s]`` whose bit for code ``c`` is
    ``tables[offsets[s] + c + 1]``. Tree ``t`` has ``depths[t]`` splits, listed from
    ``tree_splits[Σ depths[:t]]``, and its leaves from ``leaves[leaf_starts[t]]``.
    """

    kinds: np.ndarray
    columns: np.ndarray
    borders: np.ndarray
    offsets: np.ndarray
    tables: np.ndarray
    blocks: np.ndarray
    depths: np.ndarray
    tree_splits: np.ndarray
    leaf_starts: np.ndarray
    leaves: np.ndarray
    scale: float
    bias: float

    # What the compiled walk reads, in two arrays (each array a call passes costs it
    # ~0.1 µs to unpack): ``ints`` = where each integer part above starts (9 offsets,
    # counted after themselves), then the parts in order; ``reals`` = ``scale``,
    # ``bias``, the borders (float64, exact), the leaves.
    ints: np.ndarray = field(init=False, repr=False)
    reals: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = [
            self.kinds,
            self.columns,
            self.offsets,
            self.tables,
            self.blocks.reshape(-1),
            self.depths,
            self.tree_splits,
            self.leaf_starts,
        ]
        at = np.cumsum([0, *map(len, parts)])
        self.ints = np.concatenate([at, *parts]).astype(np.int64)
        self.reals = np.concatenate(
            [[self.scale, self.bias], self.borders.astype(np.float64), self.leaves]
        )

    def raw_one(self, x: np.ndarray) -> float:
        """Return the raw score (log-odds) of one encoded row (float64 array)."""
        return raw_packed(x, self.ints, self.reals)

    def raw_many(self, X: np.ndarray) -> np.ndarray:
        """Return the raw scores of an encoded matrix; each row is :meth:`raw_one`'s number."""
        return rows_in_threads(self._raw_into, X)

    def _raw_into(self, X: np.ndarray, out: np.ndarray) -> None:
        _margins(X, self.ints, self.reals, out)


def parse_catboost(
    text: str, layout: CodeLayout, tables: dict[int, tuple[int, list[int]]]
) -> ObliviousTrees | None:
    """Build the flat arrays from CatBoost's JSON model and the categorical splits' tables.

    ``tables`` maps a split's ``split_index`` to ``(block, bits)``, the bit for codes -1,
    0, 1, ... in order (:func:`compile_catboost` reads them from CatBoost). Returns None
    for what the walk does not do: non-oblivious trees, more than one output, a
    categorical split without a table. Needs no ``catboost`` import.
    """
    try:
        return _parse(json.loads(text), layout, tables)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("CatBoost model not compiled, using CatBoost's predict: %s", exc)
        return None


def _parse(
    model: dict[str, Any], layout: CodeLayout, tables: dict[int, tuple[int, list[int]]]
) -> ObliviousTrees | None:
    trees = model.get("oblivious_trees")
    scale, biases = model["scale_and_bias"]
    if not trees or len(biases) != 1:
        return None
    dense = layout.dense.tolist()
    floats = {
        f["feature_index"]: (dense[f["flat_feature_index"]], f.get("nan_value_treatment"))
        for f in model["features_info"].get("float_features", [])
    }
    split_ids: dict[int, int] = {}
    kinds: list[int] = []
    columns: list[int] = []
    borders: list[float] = []
    offsets: list[int] = []
    flat_tables: list[int] = []
    depths: list[int] = []
    tree_splits: list[int] = []
    leaf_starts: list[int] = []
    leaves: list[float] = []
    for tree in trees:
        splits = tree["splits"] or []
        values = [float(v) for v in tree["leaf_values"]]
        if len(values) != 1 << len(splits):
            return None  # more than one output per leaf
        for split in splits:
            index = int(split["split_index"])
            if index not in split_ids:
                split_ids[index] = len(kinds)
                if split["split_type"] == "FloatFeature":
                    column, nan = floats[split["float_feature_index"]]
                    kinds.append(_ABOVE_OR_NAN if nan == "AsTrue" else _ABOVE)
                    columns.append(column)
                    borders.append(float(split["border"]))
                    offsets.append(0)
                elif index in tables:
                    block, bits = tables[index]
                    if len(bits) != layout.blocks[block][1] + 1:
                        raise ValueError(f"split {index}: table of {len(bits)} codes")
                    kinds.append(_TABLE)
                    columns.append(block)
                    borders.append(0.0)
                    offsets.append(len(flat_tables))
                    flat_tables.extend(bits)
                else:
                    return None
            tree_splits.append(split_ids[index])
        depths.append(len(splits))
        leaf_starts.append(len(leaves))
        leaves.extend(values)
    return ObliviousTrees(
        kinds=np.array(kinds, dtype=np.int8),
        columns=np.array(columns, dtype=np.int64),
        borders=np.array(borders, dtype=np.float32),
        offsets=np.array(offsets, dtype=np.int64),
        tables=np.array(flat_tables, dtype=np.uint8),
        blocks=np.array(layout.blocks, dtype=np.int64).reshape(-1, 2),
        depths=np.array(depths, dtype=np.int64),
        tree_splits=np.array(tree_splits, dtype=np.int64),
        leaf_starts=np.array(leaf_starts, dtype=np.int64),
        leaves=np.array(leaves, dtype=np.float64),
        scale=float(scale),
        bias=float(biases[0]),
    )


def export_json(model: Any, layout: CodeLayout) -> str:
    """Return a fitted CatBoost model in CatBoost's own JSON format.

    CatBoost needs rows holding the categorical values to export a model with
    categoricals; the level probes hold every code of every block.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.json"
        model.save_model(str(path), format="json", pool=layout.pool(_level_probes(layout)))
        return path.read_text()


def load_catboost(text: str) -> Any:
    """Return a ``catboost.CatBoost`` read from its JSON model text."""
    from catboost import CatBoost

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.json"
        path.write_text(text)
        model = CatBoost()
        model.load_model(str(path), format="json")
        return model


def compile_catboost(
    model: Any, text: str, layout: CodeLayout
) -> dict[int, tuple[int, list[int]]] | None:
    """Return the categorical tables that compile CatBoost ``model`` (JSON ``text``), verified.

    Each categorical split's table is read from ``model.calc_leaf_indexes`` on rows that
    vary one block's code at a time (a split that two blocks move is not single-column:
    None). The compiled walk is then checked against
    ``model.predict(prediction_type="RawFormulaVal")`` on probe rows, and one row against
    the batch; any disagreement beyond ``CHECK_TOLERANCE`` (or between the two) returns
    None, and the caller keeps CatBoost's own predict.
    """
    parsed = json.loads(text)
    tables = _tables(model, parsed, layout)
    if tables is None:
        return None
    compiled = parse_catboost(text, layout, tables)
    if compiled is None:
        return None
    probes = _probes(parsed, layout)
    expected = np.asarray(
        model.predict(layout.pool(probes), prediction_type="RawFormulaVal"), dtype=np.float64
    )
    got = compiled.raw_many(probes)
    one = np.array([compiled.raw_one(row) for row in probes[:8]])
    if not (
        np.allclose(got, expected, rtol=0, atol=CHECK_TOLERANCE) and np.array_equal(one, got[:8])
    ):
        log.warning("compiled CatBoost trees disagree with CatBoost; using CatBoost's predict")
        return None
    return tables


def _level_probes(layout: CodeLayout) -> np.ndarray:
    """Zeros, then one row per (block, code): that block at that code, the others at 0."""
    rows = [np.zeros(layout.width)]
    for start, width in layout.blocks:
        for code in range(-1, width):
            row = np.zeros(layout.width)
            if code >= 0:
                row[start + code] = 1.0
            rows.append(row)
    return np.array(rows)


def _tables(
    model: Any, parsed: dict[str, Any], layout: CodeLayout
) -> dict[int, tuple[int, list[int]]] | None:
    """Read each categorical split's bit per code from CatBoost's leaf indexes."""
    where: dict[int, tuple[int, int]] = {}  # split_index -> (tree, depth) of its first use
    for t, tree in enumerate(parsed.get("oblivious_trees") or []):
        for d, split in enumerate(tree["splits"] or []):
            if split["split_type"] != "FloatFeature":
                where.setdefault(int(split["split_index"]), (t, d))
    if not where:
        return {}
    probes = _level_probes(layout)
    leaf = np.asarray(model.calc_leaf_indexes(layout.pool(probes)), dtype=np.int64)
    tables: dict[int, tuple[int, list[int]]] = {}
    for index, (t, d) in where.items():
        bits = (leaf[:, t] >> d) & 1
        moved, row = [], 1
        for block, (_start, width) in enumerate(layout.blocks):
            block_bits = bits[row : row + width + 1]
            row += width + 1
            if block_bits.min() != block_bits.max():
                moved.append((block, block_bits.tolist()))
        if len(moved) > 1:
            return None  # a split on a combination of columns: no single-column table
        if moved:
            tables[index] = moved[0]
        else:  # the same bit for every level (of the first block, as good as any)
            tables[index] = (0, [int(bits[0])] * (layout.blocks[0][1] + 1))
    return tables


def _probes(parsed: dict[str, Any], layout: CodeLayout, mixed: int = 300) -> np.ndarray:
    """Rows that cross every float border (at, just below, just above), NaNs, every level."""
    rng = np.random.default_rng(0)
    dense = layout.dense
    cuts: dict[int, list[float]] = {}
    for tree in parsed.get("oblivious_trees") or []:
        for split in tree["splits"] or []:
            if split["split_type"] == "FloatFeature":
                cuts.setdefault(split["float_feature_index"], []).append(float(split["border"]))
    flat = {
        f["feature_index"]: f["flat_feature_index"]
        for f in parsed["features_info"].get("float_features", [])
    }
    rows = [*_level_probes(layout), np.full(layout.width, np.nan)]
    X = np.zeros((mixed, layout.width))
    for feature, values in cuts.items():
        border = np.asarray(values, dtype=np.float32)[rng.integers(len(values), size=mixed)]
        step = rng.choice([-1.0, 0.0, 1.0], size=mixed).astype(np.float32)
        X[:, dense[flat[feature]]] = np.nextafter(border, border + step)  # float32 neighbours
    for start, width in layout.blocks:
        code = rng.integers(-1, width, size=mixed)
        hit = code >= 0
        X[np.flatnonzero(hit), start + code[hit]] = 1.0
    X[rng.random(X.shape) < 0.02] = np.nan
    return np.vstack([np.array(rows), X])
