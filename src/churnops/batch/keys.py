"""Find a customer in a run without a secondary index: a hash index stored as sorted blocks.

A customer's history ("their score on every date") needs, per run, the rank a customer id
holds. A B-tree index on ``run_scores (run_id, customer_id)`` would answer it, but a run
arrives in rank order, so every insert into that index lands at a random place: measured
on 1M rows (``bench/dashboard.py``), it made the writer 6.6x slower on SQLite and 2.9x on
PostgreSQL. Instead each run's ids are hashed (the 64-bit hash batch scoring already
computes, :func:`churnops.data.distinct.string_hashes`), split by the hash's top bits into
:data:`BUCKETS` buckets, and each bucket is stored as one sorted block in
``customer_keys (run_id, bucket, block)`` — a few hundred rows per run, written in the
run's own transaction. A lookup reads one block per run and binary-searches it; a shared
hash is confirmed against ``run_scores.customer_id`` by the caller.

Block layout: ``n`` hashes (unsigned 64-bit, little-endian, ascending), then the ``n``
ranks (signed 64-bit, little-endian). The hash is a storage format: changing
``string_hashes`` needs a migration that rewrites the blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

BUCKET_BITS = 8
BUCKETS = 1 << BUCKET_BITS
_MASK = (1 << 64) - 1


def customer_key(customer_id: str) -> int:
    """Return the stored hash of one id, in plain Python (a reader loads no numba kernel).

    The same arithmetic as :func:`churnops.data.distinct.string_hashes` (FNV-1a over the
    UTF-8 bytes, then splitmix64's finaliser); a test holds the two together.
    """
    h = 0xCBF29CE484222325
    for byte in customer_id.encode():
        h = ((h ^ byte) * 0x100000001B3) & _MASK
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK
    return h ^ (h >> 31)


def bucket_of(key: int) -> int:
    """Return the bucket (block) a hash belongs to."""
    return key >> (64 - BUCKET_BITS)


def ranks_in(block: bytes, key: int) -> list[int]:
    """Return the ranks stored under ``key`` in a block (usually one; none if absent)."""
    import numpy as np

    n = len(block) // 16
    keys = np.frombuffer(block, dtype="<u8", count=n)
    start, stop = (
        np.searchsorted(keys, np.uint64(key), side="left"),
        np.searchsorted(keys, np.uint64(key), side="right"),
    )
    return np.frombuffer(block, dtype="<i8", offset=8 * n)[start:stop].tolist()


class KeyIndex:
    """Collect a run's (hash, rank) pairs as it is written, then give back sorted blocks.

    Pairs are spilled to one file per bucket (16 bytes a row), so memory holds one bucket
    at a time — 1/256 of the run — whatever the run's size.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files = [(folder / f"keys-{b}.bin").open("wb") for b in range(BUCKETS)]

    def add(self, customer_ids: pa.Array | pa.ChunkedArray, ranks: np.ndarray) -> None:
        """Spill the ids of ranked rows with their ranks."""
        import numpy as np

        from churnops.data.distinct import string_hashes

        keys = string_hashes(customer_ids)
        pairs = np.empty((len(keys), 2), dtype="<u8")
        pairs[:, 0] = keys
        pairs[:, 1] = ranks
        bucket = (keys >> np.uint64(64 - BUCKET_BITS)).astype(np.int64)
        order = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(BUCKETS + 1))
        for b in np.flatnonzero(np.diff(bounds)):
            self._files[b].write(pairs[order[bounds[b] : bounds[b + 1]]].tobytes())

    def blocks(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(bucket, block)`` of every non-empty bucket, its pairs sorted by hash."""
        import numpy as np

        for f in self._files:
            f.close()
        for b in range(BUCKETS):
            path = self.folder / f"keys-{b}.bin"
            pairs = np.fromfile(path, dtype="<u8").reshape(-1, 2)
            path.unlink()
            if len(pairs):
                pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
                yield b, pairs[:, 0].tobytes() + pairs[:, 1].tobytes()
