"""Read a scoring source (CSV, Parquet or a SQL table) in chunks of bounded size.

Each chunk keeps the source's row position (``offset``) so rejected rows can be reported
by row number, and the reader digests what it reads so a run records which data it saw.
Files may be local or ``s3://`` objects (:mod:`churnops.data.storage`); an object is
digested by its bytes like a file, so the same table has the same digest wherever it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from churnops.data.sources import CSV_SUFFIXES, PARQUET_SUFFIXES, checked_file
from churnops.data.storage import Location, storage_error
from churnops.errors import DataSourceError


@dataclass
class Chunk:
    """Rows ``offset .. offset + len(frame)`` of the source."""

    offset: int
    frame: pd.DataFrame


@dataclass
class ChunkedSource:
    """A source opened for chunked reading; iterate :meth:`chunks` once."""

    label: str
    kind: str  # parquet | csv | sql
    chunk_rows: int
    total_rows: int | None = None  # known up front for Parquet only
    location: Location | None = None
    db: str | None = None
    table: str | None = None
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)

    @property
    def digest(self) -> str:
        """Return the digest of everything read so far (the whole source after iterating)."""
        return self._hash.hexdigest()[:16]

    def chunks(self, categorical: Collection[str] = (), ids: str | None = None) -> Iterator[Chunk]:
        """Yield the source's rows chunk by chunk, in source order.

        From Parquet, text columns named in ``categorical`` arrive as pandas categoricals
        (decoding a dictionary column costs a tenth of materialising one Python string per
        cell, and validation and encoding then look each distinct value up once), and the
        ``ids`` column as Arrow-backed strings (``string[pyarrow]``, no copy): ids are
        nearly all distinct, so they are only checked, hashed and written, never looked up.
        """
        if self.kind == "parquet":
            frames = self._parquet(categorical, ids)
        else:
            frames = {"csv": self._csv, "sql": self._sql}[self.kind]()
        offset = 0
        for frame in frames:
            frame = frame.reset_index(drop=True)
            if self.kind == "sql":  # files are digested by their bytes, far cheaper
                self._hash.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().data)
            yield Chunk(offset, frame)
            offset += len(frame)

    @property
    def path(self) -> str | None:
        """Return the file's path or the object's ``s3://`` URL (None for a SQL table)."""
        return self.location.text if self.location else None

    def digest_file(self) -> None:
        """Digest the file's or object's bytes (streamed: memory stays flat).

        An object is hashed by its content, not its ETag: an ETag is an MD5 of the bytes
        only for single-part uploads without KMS encryption, so the same table uploaded by
        another tool (or part size) would look like new data.
        """
        location: Location = self.location  # type: ignore[assignment]
        try:
            with location.input_stream() as file:
                while block := file.read(1 << 20):
                    self._hash.update(block)
        except OSError as exc:
            raise storage_error(location.text, exc) from exc

    def _parquet(self, categorical: Collection[str], ids: str | None) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        location: Location = self.location  # type: ignore[assignment]
        schema = pq.read_schema(location.path, filesystem=location.filesystem)
        text = {
            f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        }
        dictionary = [name for name in categorical if name in text]
        # pre_buffer off: with it, the reader keeps every row group it has read cached
        # until the file closes, so memory grew with the file (~20 bytes per row).
        with pq.ParquetFile(
            location.path,
            read_dictionary=dictionary,
            pre_buffer=False,
            filesystem=location.filesystem,
        ) as file:
            for batch in file.iter_batches(batch_size=self.chunk_rows):
                if ids not in text:
                    yield batch.to_pandas()
                    continue
                position = batch.schema.get_field_index(ids)
                frame = batch.drop_columns([ids]).to_pandas()
                arrow_ids = pd.arrays.ArrowExtensionArray(batch.column(position))
                frame.insert(position, ids, pd.Series(arrow_ids, index=frame.index))
                yield frame

    def _csv(self) -> Iterator[pd.DataFrame]:
        location: Location = self.location  # type: ignore[assignment]
        sep = "\t" if location.suffix == ".tsv" else ","
        try:
            with (
                location.readable() as source,
                pd.read_csv(source, sep=sep, chunksize=self.chunk_rows) as reader,
            ):
                yield from reader
        except OSError as exc:
            raise storage_error(location.text, exc) from exc
        except (ValueError, pd.errors.ParserError) as exc:
            raise DataSourceError(f"Could not read {self.path}: {exc}") from exc

    def _sql(self) -> Iterator[pd.DataFrame]:
        import sqlalchemy as sa

        engine = sa.create_engine(self.db)  # type: ignore[arg-type]
        try:
            with engine.connect() as conn:
                # Server-side cursor: PostgreSQL streams rows instead of sending them all.
                streaming = conn.execution_options(stream_results=True)
                yield from pd.read_sql_table(self.table, streaming, chunksize=self.chunk_rows)
        except sa.exc.SQLAlchemyError as exc:
            raise DataSourceError(f"Could not read table {self.table!r}: {exc}") from exc
        finally:
            engine.dispose()


def open_source(
    path: str | Path | None = None,
    *,
    db: str | None = None,
    table: str | None = None,
    chunk_rows: int = 100_000,
) -> ChunkedSource:
    """Check that a source (a file, an ``s3://`` object or a table) exists; open it."""
    file = checked_file(path, db=db, table=table)
    if file is None:
        _check_table(db, table)  # type: ignore[arg-type]
        return ChunkedSource(f"{_safe_url(db)}#{table}", "sql", chunk_rows, db=db, table=table)
    suffix = file.suffix
    if suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        try:
            rows = pq.read_metadata(file.path, filesystem=file.filesystem).num_rows
        except OSError as exc:
            raise storage_error(file.text, exc) from exc
        except ValueError as exc:
            raise DataSourceError(f"Could not read {file}: {exc}", {"path": str(file)}) from exc
        opened = ChunkedSource(str(file), "parquet", chunk_rows, total_rows=rows, location=file)
    elif suffix in CSV_SUFFIXES:
        opened = ChunkedSource(str(file), "csv", chunk_rows, location=file)
    else:
        raise DataSourceError(
            f"Unknown data format {suffix!r} for {file}: expected .csv, .tsv or .parquet.",
            {"path": str(file)},
        )
    opened.digest_file()
    return opened


def _check_table(db: str, table: str) -> None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(db)
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                raise DataSourceError(f"Table {table!r} not found in {engine.url!r}.")
        engine.dispose()
    except sa.exc.SQLAlchemyError as exc:
        raise DataSourceError(f"Could not open {_safe_url(db)}: {exc}") from exc
    except ModuleNotFoundError as exc:
        raise DataSourceError(f"No database driver for {_safe_url(db)}: {exc}") from exc


def _safe_url(db: str) -> str:
    """Return the URL without its password, fit for logs and the runs table."""
    import sqlalchemy as sa

    try:
        return sa.make_url(db).render_as_string(hide_password=True)
    except sa.exc.ArgumentError as exc:
        raise DataSourceError(f"Not a database URL: {db!r}") from exc
