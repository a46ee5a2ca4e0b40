"""Read a customer table from CSV, Parquet or a SQL table into a DataFrame.

Files may be local paths or ``s3://`` objects (:mod:`churnops.data.storage`): both are
read by the same readers, pyarrow handed the object's filesystem, pandas its stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from churnops.data.storage import Location, existing, locate, storage_error
from churnops.errors import DataSourceError

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def read_table(
    path: str | Path | None = None, *, db: str | None = None, table: str | None = None
) -> pd.DataFrame:
    """Read a table from a file path, an ``s3://`` URL or ``table`` in the database at ``db``.

    Columns are kept as the file has them (text stays text) so that validation can report
    dirty cells by row instead of pandas silently turning them into NaN.
    """
    file = checked_file(path, db=db, table=table)
    if file is None:
        return _read_sql(db, table)  # type: ignore[arg-type]
    suffix = file.suffix
    try:
        if suffix in PARQUET_SUFFIXES:
            return read_parquet(file)
        if suffix in CSV_SUFFIXES:
            sep = "\t" if suffix == ".tsv" else ","
            with file.readable() as source:
                return pd.read_csv(source, sep=sep, low_memory=False)
    except OSError as exc:
        raise storage_error(file.text, exc) from exc
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"Could not read {file}: {exc}", {"path": str(file)}) from exc
    raise DataSourceError(
        f"Unknown data format {suffix!r} for {file}: expected .csv, .tsv or .parquet.",
        {"path": str(file)},
    )


def read_parquet(path: str | Path | Location) -> pd.DataFrame:
    """Read one Parquet file into a DataFrame, handing pyarrow the path itself.

    ``pd.read_parquet`` opens a Python file object for a local path, and pyarrow's thread
    pool then aborts the interpreter at exit now and then ("terminate called without an
    active exception", apache/arrow#34314 and #50482: about 1 exit in 20 here). With the
    path, pyarrow opens the file natively and exits cleanly; an object is read the same
    way, by its path in pyarrow's S3 filesystem.
    """
    import pyarrow.parquet as pq

    file = path if isinstance(path, Location) else locate(path)
    return pq.read_table(file.path, filesystem=file.filesystem).to_pandas()


def checked_file(
    path: str | Path | None, *, db: str | None = None, table: str | None = None
) -> Location | None:
    """Check the source options; return the existing file or object, or None for SQL."""
    if db or table:
        if not (db and table):
            raise DataSourceError("A SQL source needs both --db URL and --table NAME.")
        return None
    if path is None:
        raise DataSourceError("Give a data file (CSV or Parquet) or --db URL --table NAME.")
    return existing(path)


def _read_sql(db: str, table: str) -> pd.DataFrame:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(db)
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                raise DataSourceError(f"Table {table!r} not found in {engine.url!r}.")
            return pd.read_sql_table(table, conn)
    except sa.exc.SQLAlchemyError as exc:
        raise DataSourceError(f"Could not read table {table!r}: {exc}") from exc
    except ModuleNotFoundError as exc:
        raise DataSourceError(f"No database driver for {db!r}: {exc}") from exc


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as CSV or Parquet depending on the suffix; return the path."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    if file.suffix.lower() in PARQUET_SUFFIXES:
        df.to_parquet(file, index=False)
    else:
        df.to_csv(file, index=False)
    return file


def find_record(path: str | Path, column: str, value: str) -> dict[str, Any] | None:
    """Return the first row of a CSV or Parquet file (or object) whose ``column`` is ``value``.

    For looking up one customer (the dashboard's customer page) without loading the table:
    Parquet is read with a pushed-down filter, CSV streamed in Arrow batches. The id is
    compared as text, whatever type the file stores it as. None when the file is gone,
    unreadable, has no such column, or no such row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        file = locate(path)
        suffix = file.suffix
        if suffix in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(file.path, filesystem=file.filesystem)
            batches = parquet.iter_batches(batch_size=200_000)
        elif suffix in CSV_SUFFIXES:
            from pyarrow import csv

            parse = csv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            convert = csv.ConvertOptions(column_types={column: pa.string()})
            stream = file.input_stream()
            batches = csv.open_csv(stream, parse_options=parse, convert_options=convert)
        else:
            return None
        for batch in batches:
            if column not in batch.schema.names:
                return None
            ids = batch.column(column).cast(pa.string())
            hits = pc.indices_nonzero(pc.equal(ids, value))
            if len(hits):
                return batch.slice(hits[0].as_py(), 1).to_pylist()[0]
    except (OSError, ValueError, pa.ArrowException, DataSourceError):
        return None
    return None
