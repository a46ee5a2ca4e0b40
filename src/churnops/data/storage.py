"""Where a table or a report lives: a local path, or an object in S3-compatible storage.

A location is text: ``data/customers.parquet`` or ``s3://bucket/path/customers.parquet``
(AWS S3, MinIO, Ceph, any S3 API). Objects go through pyarrow's own S3 filesystem:
pyarrow already reads our Parquet, its readers stream from it natively (never through a
Python file object, see :func:`churnops.data.sources.read_parquet` for why that matters),
and it adds no dependency (s3fs would bring aiobotocore and its botocore pins).

Credentials and endpoint are the standard AWS settings, so one environment serves
churnops, MLflow's S3 artifact store (boto3) and the ``aws`` CLI alike:
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` (or a profile,
or the instance role), ``AWS_REGION``/``AWS_DEFAULT_REGION``, and the endpoint of a
non-AWS server from ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL`` or, as MLflow reads
it, ``MLFLOW_S3_ENDPOINT_URL``. A failure a user can cause (no such bucket or object,
refused credentials, an endpoint that does not answer) becomes a
:class:`~churnops.errors.DataSourceError` naming the URL and what was expected.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from churnops.errors import DataSourceError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

SCHEME = "s3://"
# First set wins: the S3-only variable, then the all-services one (both read by boto3 and
# the aws CLI), then MLflow's own (deployments that set only it still reach one server).
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL")
_CREDENTIALS = "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
# pyarrow reports S3 failures as OSError text: "... AWS Error ACCESS_DENIED during ...".
_AWS_ERROR = re.compile(r"AWS Error (\w+)")
_REFUSED = {
    "ACCESS_DENIED",
    "INVALID_ACCESS_KEY_ID",
    "SIGNATURE_DOES_NOT_MATCH",
    "UNRECOGNIZED_CLIENT",
    "INVALID_CLIENT_TOKEN_ID",
    "MISSING_AUTHENTICATION_TOKEN",
    "EXPIRED_TOKEN",
}


def is_object_url(location: object) -> bool:
    """Return True when ``location`` names an object in S3-compatible storage."""
    return isinstance(location, str) and location[: len(SCHEME)].lower() == SCHEME


def endpoint_url() -> str | None:
    """Return the S3 endpoint configured in the environment (None: AWS itself)."""
    for name in ENDPOINT_VARIABLES:
        if value := os.environ.get(name, "").strip():
            return value
    return None


def split_url(url: str) -> tuple[str, str]:
    """Return the bucket and the key of ``s3://bucket/key`` (the key may be empty)."""
    bucket, _, key = url[len(SCHEME) :].partition("/")
    if not bucket:
        raise DataSourceError(
            f"{url!r} names no bucket: expected s3://BUCKET/KEY.", {"location": url}
        )
    return bucket, key.strip("/")


def join(location: str | Path, name: str) -> str | Path:
    """Return ``name`` inside a folder or a bucket prefix (``s3://b/reports`` + ``r.html``)."""
    if is_object_url(location):
        return f"{str(location).rstrip('/')}/{name}"
    return Path(location) / name


@dataclass(frozen=True)
class Location:
    """A file or an object, resolved: what pyarrow needs to open it, and how it was named.

    ``filesystem`` is None for a local file: pyarrow and pandas then open the path
    themselves, as they always did, and only objects pay for a filesystem.
    """

    text: str
    path: str
    filesystem: pafs.FileSystem | None = None

    @property
    def remote(self) -> bool:
        """Return True for an object in a bucket."""
        return self.filesystem is not None

    @property
    def suffix(self) -> str:
        """Return the lower-case extension (``.parquet``, ``.csv``) that picks the reader."""
        return PurePosixPath(self.path).suffix.lower()

    def input_stream(self) -> pa.NativeFile:
        """Open the bytes for one sequential read (digests, CSV), native on either side."""
        import pyarrow.fs as pafs

        filesystem = self.filesystem or pafs.LocalFileSystem()
        try:
            return filesystem.open_input_stream(self.path, compression=None)
        except OSError as exc:
            raise storage_error(self.text, exc) from exc

    @contextmanager
    def readable(self) -> Iterator[str | pa.NativeFile]:
        """Yield what pandas reads: the local path itself, or the object's native stream."""
        if not self.remote:
            yield self.path
            return
        with self.input_stream() as stream:
            yield stream

    def __str__(self) -> str:
        return self.text


def locate(location: str | Path) -> Location:
    """Resolve a path or an ``s3://`` URL without touching it (see :func:`existing`)."""
    if not is_object_url(location):
        return Location(str(location), str(location))
    text = str(location)
    bucket, key = split_url(text)
    return Location(text, f"{bucket}/{key}", s3_filesystem(bucket))


def existing(location: str | Path) -> Location:
    """Resolve a path or an ``s3://`` URL, and raise a clear error when nothing is there."""
    found = locate(location)
    if not found.remote:
        if not Path(found.path).exists():
            raise DataSourceError(f"Data file not found: {found.text}", {"path": found.text})
        return found
    import pyarrow.fs as pafs

    try:
        info = found.filesystem.get_file_info(found.path)  # type: ignore[union-attr]
    except OSError as exc:
        raise storage_error(found.text, exc) from exc
    if info.type == pafs.FileType.File:
        return found
    bucket, key = split_url(found.text)
    where = endpoint_url() or "AWS S3"
    if info.type == pafs.FileType.Directory or not key:
        raise DataSourceError(
            f"{found.text} is a bucket or a prefix at {where}, not an object: name the file "
            "(s3://BUCKET/path/table.parquet).",
            {"location": found.text},
        )
    _require_bucket(found.filesystem, bucket, found.text)  # type: ignore[arg-type]
    raise DataSourceError(
        f"No object at {found.text}: bucket {bucket!r} at {where} has no key {key!r}.",
        {"location": found.text},
    )


def existing_bucket(url: str) -> None:
    """Raise a clear error unless the bucket of ``url`` is there and answers (an output's)."""
    bucket, _ = split_url(url)
    _require_bucket(s3_filesystem(bucket), bucket, url)


def upload(source: Path, url: str) -> None:
    """Copy a local file into a bucket (streamed: memory stays flat).

    The object gets its content type from its name, so a report opens in a browser (an
    S3 console, a presigned link) instead of downloading as bytes.
    """
    import mimetypes

    found = locate(url)
    kind = mimetypes.guess_type(found.path)[0] or "application/octet-stream"
    try:
        with (
            source.open("rb") as file,
            found.filesystem.open_output_stream(  # type: ignore[union-attr]
                found.path, metadata={"Content-Type": kind}
            ) as out,
        ):
            while block := file.read(1 << 20):
                out.write(block)
    except OSError as exc:
        raise storage_error(url, exc, writing=True) from exc


@contextmanager
def staged(location: str | Path) -> Iterator[Path]:
    """Yield a local file to write an output to; upload it to its bucket afterwards.

    For a local location the file is the location itself. For an object it is a
    temporary file with the object's name (MLflow logs files by name), uploaded when the
    block ends without an error and removed either way.
    """
    if not is_object_url(location):
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="churnops-upload-") as tmp:
        path = Path(tmp) / (PurePosixPath(split_url(str(location))[1]).name or "object")
        yield path
        upload(path, str(location))


def s3_filesystem(bucket: str) -> pafs.S3FileSystem:
    """Return an S3 filesystem for ``bucket`` from the standard AWS settings.

    Credentials are left to the AWS SDK's own chain (environment, profile, instance
    role). The region is the configured one; with neither a region nor an endpoint, the
    bucket's own region is asked for (AWS refuses requests sent to the wrong one), and a
    custom endpoint (MinIO) takes ``us-east-1``, which such servers accept.
    """
    import pyarrow.fs as pafs

    options: dict[str, Any] = {}
    endpoint = endpoint_url()
    if endpoint:
        scheme, _, address = endpoint.rpartition("://")
        options["endpoint_override"] = address.rstrip("/")
        options["scheme"] = scheme or "https"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region and endpoint:
        region = "us-east-1"
    if not region:
        try:
            region = pafs.resolve_s3_region(bucket)
        except OSError as exc:
            raise storage_error(f"{SCHEME}{bucket}", exc) from exc
    try:
        return pafs.S3FileSystem(region=region, **options)
    except (OSError, ValueError) as exc:
        raise DataSourceError(
            f"Cannot set up S3 access for {SCHEME}{bucket} (endpoint {endpoint or 'AWS'}): {exc}",
            {"location": f"{SCHEME}{bucket}"},
        ) from exc


def storage_error(url: str, exc: OSError, *, writing: bool = False) -> DataSourceError:
    """Return the error a person can act on for a failed S3 call on ``url``.

    pyarrow names the AWS error code in its message; the codes a user can cause (a
    missing bucket or key, refused credentials, an endpoint that does not answer) get a
    message saying what was expected and what to check, the rest keep pyarrow's text.
    """
    if not is_object_url(url):
        action = "write" if writing else "read"
        return DataSourceError(f"Could not {action} {url}: {exc}", {"path": url})
    where = endpoint_url() or "AWS S3"
    match = _AWS_ERROR.search(str(exc))
    code = match.group(1) if match else ""
    bucket = url[len(SCHEME) :].partition("/")[0]
    if code == "NETWORK_CONNECTION":
        message = (
            f"Cannot reach the S3 endpoint {where} for {url}: check that the server runs "
            f"and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL ({exc})."
        )
    elif code in _REFUSED:
        need = "write to" if writing else "read"
        message = (
            f"Access to {url} at {where} was refused ({code}): {_CREDENTIALS}, and that "
            f"they may {need} bucket {bucket!r}."
        )
    elif code == "NO_SUCH_BUCKET":
        return _no_bucket(bucket, url)
    elif code in ("NO_SUCH_KEY", "RESOURCE_NOT_FOUND") or isinstance(exc, FileNotFoundError):
        message = f"No object at {url} (bucket {bucket!r} at {where})."
    else:
        message = f"Could not {'write' if writing else 'read'} {url} at {where}: {exc}"
    return DataSourceError(message, {"location": url, "endpoint": where})


def _require_bucket(filesystem: pafs.FileSystem, bucket: str, url: str) -> None:
    """Raise the missing-bucket error when ``bucket`` is not there (the key's absence aside)."""
    import pyarrow.fs as pafs

    try:
        info = filesystem.get_file_info(bucket)
    except OSError as exc:
        raise storage_error(url, exc) from exc
    if info.type == pafs.FileType.NotFound:
        raise _no_bucket(bucket, url)


def _no_bucket(bucket: str, url: str) -> DataSourceError:
    where = endpoint_url() or "AWS S3"
    return DataSourceError(
        f"Bucket {bucket!r} not found at {where} (for {url}): create it, or fix the URL.",
        {"location": url, "endpoint": where},
    )
