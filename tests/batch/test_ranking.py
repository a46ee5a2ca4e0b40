"""The external ranker: exact ranks over every row with memory bounded by a partition."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from churnops.batch.ranking import RunRanker


def _chunks(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    # Rounded scores: many exact ties, so the customer id must break them.
    scores = np.round(rng.beta(2, 5, n), 3)
    scores[:50] = 1.0
    scores[50:80] = 0.0
    ids = np.array([f"c{i:06d}" for i in rng.permutation(n)], dtype=object)
    cuts = [*list(range(0, n, 777)), n]
    return [(ids[a:b], scores[a:b]) for a, b in itertools.pairwise(cuts)]


def _ranked(tmp_path: Path, chunks: list, part_rows: int) -> pa.Table:
    ranker = RunRanker(tmp_path, part_rows)
    for ids, scores in chunks:
        ranker.add(pa.array(ids), scores)
    tables = list(ranker.ranked())
    assert all(t.num_rows <= max(part_rows, 1000) for t in tables[1:-1])  # bounded partitions
    return pa.concat_tables(tables)


@pytest.mark.parametrize("part_rows", [500, 100_000])
def test_ranks_equal_a_full_sort_by_score_then_id(tmp_path: Path, part_rows: int) -> None:
    """Ranks 1..n follow (score desc, customer id asc) exactly, across partitions."""
    chunks = _chunks(10_000)
    ranked = _ranked(tmp_path, chunks, part_rows)
    ids = np.concatenate([c[0] for c in chunks])
    scores = np.concatenate([c[1] for c in chunks])
    expected = sorted(zip(-scores, ids, strict=True))
    assert ranked.column("risk_rank").to_pylist() == list(range(1, len(ids) + 1))
    assert ranked.column("customer_id").to_pylist() == [i for _, i in expected]
    assert ranked.column("score").to_pylist() == [-s for s, _ in expected]
    assert not list(tmp_path.glob("*.arrow"))  # spill files are removed as they are read


def test_duplicates_are_found_across_chunks(tmp_path: Path) -> None:
    """A customer id in two chunks is reported; unique ids report nothing."""
    chunks = _chunks(3_000)
    (tmp_path / "ok").mkdir()
    ranker = RunRanker(tmp_path / "ok", 1000)
    for ids, scores in chunks:
        ranker.add(pa.array(ids), scores)
    assert ranker.duplicates() == []
    (tmp_path / "dup").mkdir()
    ranker = RunRanker(tmp_path / "dup", 1000)
    for ids, scores in chunks:
        ranker.add(pa.array(ids), scores)
    ids, scores = chunks[0]
    ranker.add(pa.array(ids[:2]), scores[:2] / 2)  # same ids, other scores
    assert ranker.duplicates() == sorted(ids[:2])
