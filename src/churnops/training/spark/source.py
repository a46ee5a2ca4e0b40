"""Where a Spark training reads its table: Parquet, CSV, ``s3://`` or a Spark catalog table.

Every row gets its position (:data:`ORDER`): Spark's ``monotonically_increasing_id``,
made dense on the driver (:class:`Positions`). A single Parquet or CSV file keeps its row
order, so the positions are the local reader's row numbers and the split and folds are
the local trainer's (the parity test relies on it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from churnops.data.sources import CSV_SUFFIXES, PARQUET_SUFFIXES
from churnops.errors import ConfigError, DataSourceError
from churnops.training.spark.contract import ORDER

PARTITION_BITS = 33  # monotonically_increasing_id: partition index above, row below
HADOOP_AWS = "org.apache.hadoop:hadoop-aws:3.4.1"


def read_frame(spark: Any, data: str | None, table: str | None = None) -> Any:
    """Return the source as a Spark DataFrame with its row-order column.

    Args:
        spark: the session.
        data: a Parquet file or folder, a CSV/TSV file, or an ``s3://``/``s3a://`` URL.
        table: a table in the Spark catalog (instead of ``data``).
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    if (data is None) == (table is None):
        raise DataSourceError("Give a data file, folder or s3:// URL, or --table NAME (not both).")
    try:
        frame = spark.table(table) if table is not None else _read_path(spark, data)
    except AnalysisException as exc:
        raise DataSourceError(f"Spark could not read {table or data}: {exc.getMessage()}") from exc
    return frame.withColumn(ORDER, F.monotonically_increasing_id())


def _read_path(spark: Any, data: str) -> Any:
    remote = data.startswith(("s3://", "s3a://"))
    if remote:
        data = "s3a://" + data.split("://", 1)[1]
        configure_s3a(spark)
    else:
        path = Path(data)
        if not path.exists():
            raise DataSourceError(f"Data file not found: {path}", {"path": data})
    suffix = Path(data.rstrip("/")).suffix.lower()
    if suffix in CSV_SUFFIXES:
        sep = "\t" if suffix == ".tsv" else ","
        return spark.read.option("header", True).option("sep", sep).csv(data)
    if suffix in PARQUET_SUFFIXES or remote or Path(data).is_dir():
        return spark.read.parquet(data)
    raise DataSourceError(
        f"Unknown data format {suffix!r} for {data}: expected .csv, .tsv, .parquet or a "
        "folder of Parquet files.",
        {"path": data},
    )


def configure_s3a(spark: Any) -> None:
    """Point Hadoop's S3A file system at the standard AWS settings of the environment.

    The keys, session token, region and endpoint (``AWS_ENDPOINT_URL_S3`` or
    ``AWS_ENDPOINT_URL``, e.g. MinIO: path-style access then) are the ones the local
    readers take. S3A itself lives in the ``hadoop-aws`` jar, which PySpark does not ship.
    """
    jvm = spark.sparkContext._jvm
    try:
        jvm.java.lang.Class.forName("org.apache.hadoop.fs.s3a.S3AFileSystem")
    except Exception as exc:  # py4j wraps ClassNotFoundException
        raise ConfigError(
            "Reading s3:// with Spark needs the hadoop-aws jar, which PySpark does not ship: "
            f"set PYSPARK_SUBMIT_ARGS='--packages {HADOOP_AWS} pyspark-shell' (or add the jar "
            "to spark.jars) and run again, or copy the table to local Parquet."
        ) from exc
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    settings = {
        "fs.s3a.access.key": os.environ.get("AWS_ACCESS_KEY_ID"),
        "fs.s3a.secret.key": os.environ.get("AWS_SECRET_ACCESS_KEY"),
        "fs.s3a.session.token": os.environ.get("AWS_SESSION_TOKEN"),
        "fs.s3a.endpoint.region": os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION"),
        "fs.s3a.endpoint": os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL"),
    }
    for key, value in settings.items():
        if value:
            conf.set(key, value)
    if settings["fs.s3a.endpoint"]:
        conf.set("fs.s3a.path.style.access", "true")


@dataclass(frozen=True)
class Positions:
    """Dense row positions from Spark's sparse row ids: ``offsets[partition] + row``."""

    offsets: np.ndarray

    @classmethod
    def from_ids(cls, ids: np.ndarray) -> Positions:
        """Count each partition's rows in the ids of the whole table."""
        counts = np.bincount(ids >> PARTITION_BITS)
        return cls(np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64))

    def of(self, ids: np.ndarray) -> np.ndarray:
        """Return the dense positions of Spark row ids."""
        ids = np.asarray(ids, dtype=np.int64)
        return self.offsets[ids >> PARTITION_BITS] + (ids & ((1 << PARTITION_BITS) - 1))
