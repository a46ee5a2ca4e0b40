"""Customer-key blocks: the stored hash, bucketing and lookup of a run's ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from churnops.batch.keys import BUCKETS, GROUPS, KeyIndex, bucket_of, customer_key, ranks_in
from churnops.data.distinct import string_hashes


def test_the_python_key_is_the_batch_hash() -> None:
    """One id hashed in plain Python equals the compiled hash of the Arrow buffers."""
    ids = ["", "a", "C00012345", "é-ü-ß", "📞 ☎", "x" * 200, 'odd "id"\\with,specials|é']
    ids += [f"T{i:06d}" for i in range(500)]
    expected = string_hashes(pa.array(ids)).tolist()
    assert [customer_key(i) for i in ids] == expected


def test_blocks_find_every_rank_and_nothing_else(tmp_path: Path) -> None:
    """Ids added in rank order across tables come back from their bucket's block."""
    ids = [f"C{i:07d}" for i in np.random.default_rng(1).permutation(20_000)]
    index = KeyIndex(tmp_path)
    for start in range(0, len(ids), 3_000):
        part = ids[start : start + 3_000]
        index.add(pa.array(part), np.arange(start + 1, start + len(part) + 1))
    index.finish()
    blocks = dict(index.blocks())
    assert set(blocks) <= set(range(BUCKETS))
    assert sum(len(b) for b in blocks.values()) == 8 * len(ids)
    assert len(list(tmp_path.iterdir())) == 2 * GROUPS  # a few dozen files, not one per bucket
    for rank, customer in list(enumerate(ids, start=1))[::997]:
        key = customer_key(customer)
        assert ranks_in(blocks[bucket_of(key)], key) == [rank]
    missing = customer_key("nobody")
    assert ranks_in(blocks.get(bucket_of(missing), b""), missing) == []


def test_a_shared_hash_gives_every_rank(tmp_path: Path) -> None:
    """Two ranks under one hash (an id is unique per run, a hash need not be) both return."""
    index = KeyIndex(tmp_path)
    index.add(pa.array(["same", "other", "same"]), np.array([1, 2, 3]))
    index.finish()
    key = customer_key("same")
    block = dict(index.blocks())[bucket_of(key)]
    assert ranks_in(block, key) == [1, 3]
