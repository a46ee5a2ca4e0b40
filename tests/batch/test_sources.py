"""Chunked sources: row order and offsets, and the dtypes the scoring path relies on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churnops.batch.sources import open_source
from churnops.data.sources import write_table
from tests.factories import make_customers


def test_parquet_chunks_keep_order_categoricals_and_arrow_ids(tmp_path: Path) -> None:
    """Chunks tile the file in order; categoricals and Arrow-backed ids keep their place."""
    df = make_customers(250, seed=2)
    source = open_source(write_table(df, tmp_path / "c.parquet"), chunk_rows=100)
    chunks = list(source.chunks(["contract"], ids="customer_id"))
    assert [c.offset for c in chunks] == [0, 100, 200]
    back = pd.concat([c.frame for c in chunks], ignore_index=True)
    assert list(back.columns) == list(df.columns)
    assert isinstance(back["contract"].dtype, pd.CategoricalDtype)
    assert str(chunks[0].frame["customer_id"].dtype) == "string[pyarrow]"
    pd.testing.assert_frame_equal(back, df, check_dtype=False, check_categorical=False)
    assert source.total_rows == 250
    assert len(source.digest) == 16


def test_csv_chunks_and_the_same_file_digest_the_same(tmp_path: Path) -> None:
    """CSV reads in chunks of object text; a source's digest depends on its bytes only."""
    df = make_customers(120, seed=5)
    path = write_table(df, tmp_path / "c.csv")
    first = open_source(path, chunk_rows=50)
    frames = [c.frame for c in first.chunks(["contract"], ids="customer_id")]
    assert [len(f) for f in frames] == [50, 50, 20]
    assert frames[0]["customer_id"].dtype == object
    assert open_source(path, chunk_rows=7).digest == first.digest
