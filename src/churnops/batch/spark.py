"""The Spark engine: the same per-chunk scoring path, run by Spark workers.

``mapInPandas`` hands each worker Arrow batches of the source; each batch goes through
:func:`churnops.batch.chunk.score_chunk` — validation, the champion's ScoringModel — so
Spark and pandas produce the same scores by construction. Each task keeps its own top k
candidates for reasons (with their encoded features) and sends them after its scores;
the driver merges them and explains the run's final top k once, as the pandas engine
does. Results are staged as Parquet in a scratch folder and streamed back by the driver
into the same ranker and writer, so the date is swapped in one transaction exactly as
with the pandas engine.
Workers run ``sys.executable`` (``PYSPARK_PYTHON``) so they import the same packages.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops.batch.chunk import (
    REJECT_COLUMNS,
    SCORE_COLUMNS,
    ChunkResult,
    RowExtras,
    TopCandidates,
    score_chunk,
)
from churnops.batch.sources import ChunkedSource
from churnops.config import Settings
from churnops.errors import ConfigError

OUTPUT_SCHEMA = (
    "customer_id string, score double, high_risk boolean, segment long, value double, "
    "row_number long, reason string, features binary"
)
OUTPUT_COLUMNS = [
    "customer_id",
    "score",
    "high_risk",
    "segment",
    "value",
    "row_number",
    "reason",
    "features",
]
ROW_COLUMN = "_churnops_row"


def spark_session(master: str, scratch: Path, driver_memory: str = "") -> Any:
    """Return a Spark session whose workers use this Python and whose scratch is ``scratch``.

    ``driver_memory`` (``"8g"``) sizes the driver's JVM heap, which in ``local[N]`` mode is
    also the executors'; empty keeps Spark's default (1g). It only applies when this call
    starts the JVM.
    """
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    if driver_memory:
        builder = builder.config("spark.driver.memory", driver_memory)
    return (
        builder.master(master)
        .appName("churnops-score")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.local.dir", str(scratch / "local"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={scratch / 'derby'}")
        .getOrCreate()
    )


def spark_results(
    model: Any,
    reader: ChunkedSource,
    settings: Settings,
    master: str,
    candidates: TopCandidates,
    extras: RowExtras,
) -> Iterator[ChunkResult]:
    """Score ``reader``'s source on Spark and yield the staged results chunk by chunk.

    The tasks' candidates for reasons are merged into ``candidates``; each scored row
    carries the run's ``extras`` (segment code, customer value).
    """
    if reader.kind == "sql":
        raise ConfigError(
            "--engine spark reads CSV or Parquet files; score SQL tables with --engine pandas "
            "or export them to Parquet first."
        )
    with tempfile.TemporaryDirectory(prefix="churnops-spark-") as tmp:
        scratch = Path(tmp)
        spark = spark_session(master, scratch, settings.spark_driver_memory)
        spark.sparkContext.setLogLevel("ERROR")
        staged = scratch / "staged"
        try:
            frame = _read(spark, reader)
            scorer = task_scorer(model, settings.reasons_top, extras)
            scored = frame.mapInPandas(scorer, OUTPUT_SCHEMA)
            scored.write.parquet(str(staged))
        finally:
            spark.stop()
        yield from _read_staged(staged, settings.batch_chunk_rows, candidates, extras)


def _read(spark: Any, reader: ChunkedSource) -> Any:
    """Read the source with a row number for rejected rows.

    Parquet: the row's 0-based position in the file (Spark's ``_metadata.row_index``), as
    the pandas engine reports it (row 1 is 0). CSV has no such column; its rows get Spark's own
    ``monotonically_increasing_id`` (unique, not the line number: that would need a pass
    over the whole file in order).
    """
    from pyspark.sql import functions as F

    path = str(reader.path)
    if reader.kind == "parquet":
        frame = spark.read.parquet(path)
        return frame.withColumn(ROW_COLUMN, F.col("_metadata.row_index"))
    # Text cells; validation coerces them exactly as for the pandas engine.
    sep = "\t" if path.endswith(".tsv") else ","
    frame = spark.read.option("header", True).option("sep", sep).csv(path)
    return frame.withColumn(ROW_COLUMN, F.monotonically_increasing_id())


def task_scorer(model: Any, reasons_top: int, extras: RowExtras | None = None) -> Any:
    """Return the ``mapInPandas`` function: score each batch, then send the task's top k."""

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from churnops.scoring.fast import FastScorer

        scorer = FastScorer(model)  # per task: compiled on the worker, not pickled
        top = TopCandidates(reasons_top)  # per task; the driver merges them
        for batch in batches:
            rows = batch.pop(ROW_COLUMN).to_numpy()
            result = score_chunk(scorer, batch.reset_index(drop=True), 0, top, extras=extras)
            ids = result.scores["customer_id"].astype(object)  # Spark's Arrow writer wants text
            scores = result.scores.assign(customer_id=ids, row_number=None, reason=None)
            rejected = result.rejected.assign(
                row_number=rows[result.rejected["row_number"].to_numpy(dtype=int)],
                score=np.nan,
                high_risk=None,
            )
            parts = [scores, rejected] if len(rejected) else [scores]
            frame = pd.concat(parts, ignore_index=True).assign(features=None)
            yield frame.reindex(columns=OUTPUT_COLUMNS)  # columns a row lacks are null
        candidates = top.frame().assign(high_risk=True, row_number=None, reason=None)
        yield candidates.reindex(columns=OUTPUT_COLUMNS)

    return score_batches


def _read_staged(
    staged: Path, chunk_rows: int, candidates: TopCandidates, extras: RowExtras
) -> Iterator[ChunkResult]:
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(staged), format="parquet")
    for batch in dataset.to_batches(batch_size=chunk_rows):
        frame = batch.to_pandas()
        offered = frame["features"].notna()
        candidates.offer_frame(frame.loc[offered])
        frame = frame.loc[~offered]
        bad = frame["reason"].notna()
        scores = frame.loc[~bad, [*SCORE_COLUMNS, *extras.columns]]
        scores = scores.astype({"high_risk": bool}).reset_index(drop=True)
        rejected = frame.loc[bad, REJECT_COLUMNS].reset_index(drop=True)
        yield ChunkResult(scores, rejected)
