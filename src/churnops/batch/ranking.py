"""Rank a run's scores over every row, in memory bounded by a chunk, not by the run.

A run is written in rank order (``risk_rank`` 1 = riskiest; ties by customer id), so the
store appends to one B-tree instead of sorting a whole run inside a transaction. The rank
of a row depends on every other row, so the scored chunks are spilled to Arrow files in a
scratch folder and ranked as an external bucket sort:

1. :meth:`RunRanker.add` spills each chunk, counts its scores into a fine histogram over
   [0, 1] and spills 64-bit hashes of its customer ids into hash buckets.
2. The histogram cuts the score range into partitions of at most ``part_rows`` rows
   (a partition only exceeds it when more rows share one histogram bin).
3. :meth:`RunRanker.ranked` routes every spilled row to its partition, then sorts the
   partitions one at a time, riskiest first, and yields them with their ranks; the ids'
   hashes and ranks go to the run's customer-key blocks (:meth:`RunRanker.key_blocks`).

Customer ids must be unique within a run (one score per customer per date): the hash
buckets are checked one at a time by :meth:`RunRanker.duplicates`, exactly (a hash
collision is confirmed against the ids themselves). Memory stays at a few chunks whatever
the number of rows; the scratch files hold about 30 bytes per row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnops.batch.keys import KeyIndex
from churnops.data.distinct import one_array, string_hashes

BINS = 1 << 16  # score histogram resolution: 1.5e-5 wide bins
HASH_BUCKETS = 64
SPILL_FIELDS = [pa.field("customer_id", pa.string()), pa.field("score", pa.float64())]


class RunRanker:
    """Collect a run's scored rows, then give them back ranked, partition by partition.

    ``extra`` fields (a segment code, a customer value) travel with each row untouched.
    """

    def __init__(self, folder: Path, part_rows: int, extra: Sequence[pa.Field] = ()) -> None:
        self.folder = folder
        self.part_rows = max(1, part_rows)
        self.rows = 0
        self.histogram = np.zeros(BINS, dtype=np.int64)
        self.extra = list(extra)
        self.spill_schema = pa.schema([*SPILL_FIELDS, *self.extra])
        self.ranked_schema = pa.schema([pa.field("risk_rank", pa.int64()), *self.spill_schema])
        self._spill = pa.ipc.new_stream(folder / "spill.arrow", self.spill_schema)
        self._hashes = [(folder / f"ids-{b}.u64").open("wb") for b in range(HASH_BUCKETS)]

    def add(
        self,
        customer_ids: pa.Array | pa.ChunkedArray,
        scores: np.ndarray,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Spill one chunk of scored rows (ids as Arrow text, probabilities, ``extra`` fields).

        NaN in a float extra field becomes null (stored as NULL).
        """
        if len(scores) == 0:
            return
        customer_ids = one_array(customer_ids)
        extra = extra or {}
        batch = pa.record_batch(
            [
                customer_ids.cast(pa.string()),
                pa.array(scores, type=pa.float64()),
                *(pa.array(extra[f.name], type=f.type, from_pandas=True) for f in self.extra),
            ],
            schema=self.spill_schema,
        )
        self._spill.write_batch(batch)
        self.histogram += np.bincount(_bins(scores), minlength=BINS)
        hashes = string_hashes(customer_ids)
        bucket = (hashes % HASH_BUCKETS).astype(np.uint8)
        order = np.argsort(bucket, kind="stable")  # a radix sort for 8-bit keys
        bounds = np.searchsorted(bucket[order], np.arange(HASH_BUCKETS + 1))
        for b in range(HASH_BUCKETS):
            part = hashes[order[bounds[b] : bounds[b + 1]]]
            if len(part):
                self._hashes[b].write(part.tobytes())
        self.rows += len(scores)

    def close(self) -> None:
        """Finish the spill files (idempotent)."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None
            for f in self._hashes:
                f.close()

    def duplicates(self, limit: int = 5) -> list[str]:
        """Return up to ``limit`` customer ids that occur more than once in the run."""
        self.close()
        suspects: list[np.ndarray] = []
        for b in range(HASH_BUCKETS):
            hashes = np.sort(np.fromfile(self.folder / f"ids-{b}.u64", dtype=np.uint64))
            repeated = hashes[1:][hashes[1:] == hashes[:-1]]
            if len(repeated):
                suspects.append(np.unique(repeated))
        if not suspects:
            return []
        wanted = np.concatenate(suspects)
        seen: dict[str, int] = {}
        for batch in self._batches(self.folder / "spill.arrow"):
            ids = batch.column(0)
            hit = np.isin(string_hashes(ids), wanted)
            for customer in ids.filter(pa.array(hit)).to_pylist():
                seen[customer] = seen.get(customer, 0) + 1
        return sorted(c for c, n in seen.items() if n > 1)[:limit]

    def ranked(self) -> Iterator[pa.Table]:
        """Yield the run in rank order as tables of ``ranked_schema``."""
        self.close()
        bin_part, parts = _partitions(self.histogram, self.part_rows)
        writers = [
            pa.ipc.new_stream(self.folder / f"part-{p}.arrow", self.spill_schema)
            for p in range(parts)
        ]
        for batch in self._batches(self.folder / "spill.arrow"):
            part = bin_part[_bins(batch.column(1).to_numpy())]
            order = np.argsort(part, kind="stable")
            bounds = np.searchsorted(part[order], np.arange(parts + 1))
            for p in range(parts):
                if bounds[p + 1] > bounds[p]:
                    writers[p].write_batch(batch.take(pa.array(order[bounds[p] : bounds[p + 1]])))
        for writer in writers:
            writer.close()
        (self.folder / "spill.arrow").unlink()
        self._keys = KeyIndex(self.folder)
        rank = 0
        for p in range(parts):  # partition 0 holds the highest scores
            path = self.folder / f"part-{p}.arrow"
            with _reader(path) as reader:
                table = reader.read_all()
            path.unlink()
            if table.num_rows == 0:
                continue
            keys = [("score", "descending"), ("customer_id", "ascending")]
            table = table.take(pc.sort_indices(table, sort_keys=keys))
            ranks = np.arange(rank + 1, rank + table.num_rows + 1, dtype=np.int64)
            rank += table.num_rows
            ranked = pa.Table.from_arrays(
                [pa.array(ranks), *table.columns], schema=self.ranked_schema
            ).combine_chunks()
            self._keys.add(ranked.column("customer_id"), ranks)
            yield ranked
        self._keys.finish()  # runs while the writer inserts the last partition

    def key_blocks(self) -> Iterator[tuple[int, bytes]]:
        """Yield the run's customer-key blocks (see :mod:`churnops.batch.keys`).

        Call once :meth:`ranked` is exhausted: every ranked row has been added by then.
        """
        return self._keys.blocks()

    @staticmethod
    def _batches(path: Path) -> Iterator[pa.RecordBatch]:
        with _reader(path) as reader:
            yield from reader


def _reader(path: Path) -> pa.ipc.RecordBatchStreamReader:
    """Open a spill file by plain reads: a memory map (pyarrow's default for a path) would
    count every page read so far as resident memory, which then grows with the run."""
    return pa.ipc.open_stream(pa.OSFile(str(path), "rb"))


def _bins(scores: np.ndarray) -> np.ndarray:
    """Map scores to histogram bins; a higher bin always means a strictly higher score."""
    return np.minimum((np.clip(scores, 0.0, 1.0) * BINS).astype(np.int64), BINS - 1)


def _partitions(histogram: np.ndarray, part_rows: int) -> tuple[np.ndarray, int]:
    """Cut the bins, from the highest score down, into partitions of about ``part_rows``.

    Returns each bin's partition (0 = riskiest) and the number of partitions.
    """
    bin_part = np.zeros(BINS, dtype=np.int64)
    part, filled = 0, 0
    for b in np.flatnonzero(histogram)[::-1]:
        count = int(histogram[b])
        if filled and filled + count > part_rows:
            part, filled = part + 1, 0
        bin_part[b] = part
        filled += count
    # Empty bins keep partition 0: no row maps to them.
    return bin_part, part + 1
