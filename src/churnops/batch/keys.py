"""Find a customer in a run without a secondary index: a hash index stored as sorted blocks.

A customer's history ("their score on every date") needs, per run, the rank a customer id
holds. A B-tree index on ``run_scores (run_id, customer_id)`` would answer it, but a run
arrives in rank order, so every insert into that index lands at a random place: measured
on 1M rows (``bench/dashboard.py``), it made the writer 6.6x slower on SQLite and 2.9x on
PostgreSQL. Instead each run's ids are hashed (the 64-bit hash batch scoring already
computes, :func:`churnops.data.distinct.string_hashes`), split by the hash's top
:data:`BUCKET_BITS` bits into buckets, and each bucket is stored as one sorted block in
``customer_keys (run_id, bucket, block)`` — a few hundred rows per run, 8 bytes per
customer, written in the run's own transaction. A lookup reads one block per run and
binary-searches it; a shared hash is confirmed against ``run_scores.customer_id`` by the
caller.

Block layout: ``n`` keys (the hash's low 32 bits, unsigned, little-endian, ascending),
then the ``n`` ranks (unsigned 32-bit, little-endian). The hash is a storage format:
changing ``string_hashes`` needs a migration that rewrites the blocks.
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
GROUP_BITS = 4  # spill files: each holds 16 buckets
GROUPS = 1 << GROUP_BITS
_MASK = (1 << 64) - 1
_LOW = (1 << 32) - 1


def customer_key(customer_id: str) -> int:
    """Return the 64-bit hash of one id, in plain Python (a reader loads no numba kernel).

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
    """Return the bucket (block) a 64-bit hash belongs to."""
    return key >> (64 - BUCKET_BITS)


def ranks_in(block: bytes, key: int) -> list[int]:
    """Return the ranks stored under a 64-bit hash in its block (usually one; none if absent)."""
    import numpy as np

    n = len(block) // 8
    keys = np.frombuffer(block, dtype="<u4", count=n)
    low = np.uint32(key & _LOW)
    start, stop = np.searchsorted(keys, low, "left"), np.searchsorted(keys, low, "right")
    return np.frombuffer(block, dtype="<u4", offset=4 * n)[start:stop].tolist()


class KeyIndex:
    """Collect a run's (hash, rank) pairs as it is ranked, then give back sorted blocks.

    Pairs are spilled to :data:`GROUPS` files by the hash's top bits (12 bytes a row), so
    memory holds one group at a time — 1/16 of the run — whatever the run's size, and a
    run makes a few dozen files (deleting a just-written file costs ~1.5 ms here, so one
    file per bucket cost 0.4 s). :meth:`finish` sorts them, in the ranker's thread while
    the writer inserts the last rows.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files = [self._path("pairs", g).open("wb") for g in range(GROUPS)]
        self._blocks: list[tuple[int, int, int, int]] = []  # bucket, group, start, stop

    def _path(self, kind: str, group: int) -> Path:
        return self.folder / f"keys-{kind}-{group}.bin"

    def add(self, customer_ids: pa.Array | pa.ChunkedArray, ranks: np.ndarray) -> None:
        """Spill the ids of ranked rows with their ranks."""
        import numpy as np

        from churnops.data.distinct import string_hashes

        hashes = string_hashes(customer_ids)
        rows = np.empty((len(hashes), 3), dtype="<u4")  # hash high, hash low, rank
        rows[:, 0] = hashes >> np.uint64(32)
        rows[:, 1] = hashes & np.uint64(_LOW)
        rows[:, 2] = ranks
        group = (hashes >> np.uint64(64 - GROUP_BITS)).astype(np.uint8)
        order = np.argsort(group, kind="stable")  # a radix sort for 8-bit keys
        bounds = np.searchsorted(group[order], np.arange(GROUPS + 1))
        for g in np.flatnonzero(np.diff(bounds)):
            self._files[g].write(rows[order[bounds[g] : bounds[g + 1]]].tobytes())

    def finish(self) -> None:
        """Write each group's blocks (per bucket: keys sorted, then their ranks)."""
        import numpy as np

        for g, f in enumerate(self._files):
            f.close()
            rows = np.fromfile(self._path("pairs", g), dtype="<u4").reshape(-1, 3)
            bucket = rows[:, 0] >> np.uint32(32 - BUCKET_BITS)
            rows = rows[np.lexsort((rows[:, 1], bucket))]
            bucket = rows[:, 0] >> np.uint32(32 - BUCKET_BITS)
            bounds = np.searchsorted(bucket, np.arange(BUCKETS + 1))
            out, at = [], 0
            for b in np.flatnonzero(np.diff(bounds)).tolist():
                part = rows[bounds[b] : bounds[b + 1]]
                out += [part[:, 1].tobytes(), part[:, 2].tobytes()]
                self._blocks.append((b, g, at, at + 8 * len(part)))
                at += 8 * len(part)
            self._path("blocks", g).write_bytes(b"".join(out))

    def blocks(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(bucket, block)`` of every non-empty bucket (after :meth:`finish`)."""
        held: tuple[int, bytes] = (-1, b"")
        for bucket, group, start, stop in self._blocks:
            if held[0] != group:
                held = (group, self._path("blocks", group).read_bytes())
            yield bucket, held[1][start:stop]
