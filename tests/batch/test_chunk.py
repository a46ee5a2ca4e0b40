"""Choosing who gets reasons: the run's final top k, whatever the chunking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from churnops.batch.chunk import TopCandidates


class _Model:
    """Stands in for ScoringModel.reasons: a row's 'reason' is its first feature."""

    def reasons(self, X: np.ndarray) -> list[list[dict[str, float]]]:
        return [[{"feature": "f", "contribution": float(x[0])}] for x in X]


def test_candidates_are_exactly_the_final_top_k_with_ties_broken_by_id() -> None:
    """Across chunks (and ties at the cutoff), the kept rows are the top k by (score, id)."""
    rng = np.random.default_rng(3)
    k, seen = 40, []
    top = TopCandidates(k)
    for c in range(6):
        p = np.round(rng.random(500), 2)  # many ties
        ids = np.array([f"c{c}-{i:03d}" for i in range(500)], dtype=object)
        high = p >= 0.3
        X = np.column_stack([p, np.arange(500)])
        top.offer(pa.array(ids), p, X, high)
        seen += [(-s, i) for s, i, h in zip(p, ids, high, strict=True) if h]
    expected = [i for _, i in sorted(seen)[:k]]
    reasons = top.explain(_Model())
    assert list(reasons) == expected
    assert (
        reasons[expected[0]] == '[{"feature":"f","contribution":' + f"{-sorted(seen)[0][0]}" + "}]"
    )


def test_candidates_sent_by_tasks_merge_into_the_same_top_k() -> None:
    """Spark tasks' candidates (rows with feature bytes) merge into the one-process top k."""
    rng = np.random.default_rng(5)
    k, width = 30, 3
    whole, tasks = TopCandidates(k), [TopCandidates(k) for _ in range(3)]
    for t in range(9):
        p = np.round(rng.random(400), 2)
        ids = pa.array([f"t{t}-{i:03d}" for i in range(400)])
        X = rng.random((400, width))
        high = p >= 0.5
        whole.offer(ids, p, X, high)
        tasks[t % 3].offer(ids, p, X, high)
    driver = TopCandidates(k)
    for task in tasks:
        driver.offer_frame(task.frame())
    assert driver.ids.tolist() == whole.ids.tolist()
    np.testing.assert_array_equal(driver.X, whole.X)
    driver.offer_frame(TopCandidates(k).frame())  # a task with no candidates
    assert len(driver.ids) == k


def test_ids_become_text_whatever_the_column_holds() -> None:
    """Integer, float-with-gaps, nullable, text and mixed ids give the same text as CSV had."""
    from churnops.batch.chunk import _ids

    cases = {
        "int64": ([1, 22, 333], ["1", "22", "333"]),
        "whole floats with a gap": ([1.0, np.nan, 333.0], ["1", None, "333"]),
        "fractional floats": ([1.5, np.nan], ["1.5", None]),
        "nullable Int64": (pd.array([1, None, 3], dtype="Int64"), ["1", None, "3"]),
        "text": (["a", None, "b"], ["a", None, "b"]),
        "Arrow text": (pd.array(["a", None], dtype="string[pyarrow]"), ["a", None]),
        "mixed": ([1, "x", None], ["1", "x", None]),
    }
    for name, (values, expected) in cases.items():
        assert _ids(pd.DataFrame({"c": values}), "c", 0).to_pylist() == expected, name
    assert _ids(pd.DataFrame({"x": [1, 2]}), "c", 5).to_pylist() == ["5", "6"]  # row numbers
