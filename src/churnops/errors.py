"""One error tree for churnops, mapped once to CLI exit codes and once to HTTP statuses.

    ChurnopsError                     exit 1, HTTP 500
    ├── ConfigError                   exit 2, HTTP 500  settings or options that cannot work
    ├── MissingExtraError             exit 1, HTTP 500  an optional engine that is not installed
    ├── DataError                     exit 1, HTTP 422  a table we cannot use
    │   ├── DataSourceError           exit 1, HTTP 422  missing file, unknown format, bad SQL table
    │   ├── ContractError             exit 1, HTTP 422  a contract that cannot be built or read
    │   └── DataValidationError       exit 1, HTTP 422  rows/columns that break the contract
    ├── ScoringInputError             exit 1, HTTP 422  a record the model cannot score
    ├── ModelNotFoundError            exit 3, HTTP 503  no such registered model, version or alias
    ├── RegistryError                 exit 3, HTTP 503  the tracking store refused or failed
    │   └── ModelIntegrityError       exit 1, HTTP 503  artifact files differ from their hashes
    ├── RunInProgressError            exit 4, HTTP 409  another run of the date is running
    └── ServingError                  exit 1, HTTP 500  the online API refused a request
        ├── AuthenticationError       exit 1, HTTP 401  no API key, or not a valid one
        ├── PermissionDeniedError     exit 1, HTTP 403  a valid key without the role
        ├── PayloadTooLargeError      exit 1, HTTP 413  a request body above the limit
        ├── RateLimitedError          exit 1, HTTP 429  the key's token bucket is empty
        ├── ModelNotReadyError        exit 3, HTTP 503  no model loaded yet
        ├── ServiceUnavailableError   exit 1, HTTP 503  busy, or a limiter that fails closed
        └── ReloadError               exit 3, HTTP 409  a new model that cannot replace the old

``ServingError`` subclasses may carry ``headers`` (``Retry-After``, ``WWW-Authenticate``)
that the API's one exception handler copies onto the response.

Every error carries a message meant for a person (which rows, which columns, what was
expected) and an optional ``details`` dict for ``--json`` output and API bodies.
"""

from __future__ import annotations

from typing import Any

from churnops.redact import redact, redact_data


class ChurnopsError(Exception):
    """Base of every error churnops raises on purpose.

    The message and details are redacted when the error is made (URL passwords become
    ``***``): they quote URLs and driver errors, and reach CLI output, API answers, logs
    and reload reasons, so this is the one place every such text passes through.
    """

    exit_code = 1
    http_status = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.details = redact_data(details or {})

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe description for CLI ``--json`` output and API error bodies."""
        return {"error": type(self).__name__, "message": self.message, **self.details}


class ConfigError(ChurnopsError):
    """Settings or command options that cannot work together."""

    exit_code = 2


class MissingExtraError(ChurnopsError):
    """A command needs an optional engine (PySpark, Dagster) the install left out.

    Heavy engines are extras so the core install stays light; the message names the extra
    to install instead of surfacing an ``ImportError`` from deep inside the engine.
    """


class DataError(ChurnopsError):
    """A table churnops cannot use as given."""

    http_status = 422


class DataSourceError(DataError):
    """A source that cannot be read: missing file, unknown format, unknown SQL table."""


class ContractError(DataError):
    """A data contract that cannot be inferred, read or applied."""


class DataValidationError(DataError):
    """Rows or columns that break the data contract; ``details['issues']`` lists them."""


class NotFoundError(DataError):
    """Nothing stored for what was asked: no scores yet, no scores for a date."""

    http_status = 404


class ScoringInputError(ChurnopsError):
    """A record the model cannot score (missing field, wrong type, unknown category)."""

    http_status = 422


class ModelNotFoundError(ChurnopsError):
    """No registered model, version or alias by that name."""

    exit_code = 3
    http_status = 503


class RegistryError(ChurnopsError):
    """The MLflow tracking store or model registry failed or refused a change."""

    exit_code = 3
    http_status = 503


class ModelIntegrityError(RegistryError):
    """A model artifact whose files differ from the SHA-256 manifest (or HMAC) registered.

    Raised before any file is parsed: a tampered, truncated, missing or extra file names
    itself, and nothing from the folder is loaded. Exit 1, not the registry's 3: exit 3
    says "not there or not reachable, try again later", and retrying will not fix files
    that were changed.
    """

    exit_code = 1


class RunInProgressError(ChurnopsError):
    """A batch run refused because another run of the same scoring date holds its lock.

    Its own exit code: a scheduler that fired twice should see "skipped, already running",
    not a failure to investigate; re-running the date once the other run ends is safe.
    """

    exit_code = 4
    http_status = 409


class ServingError(ChurnopsError):
    """A request the online API refuses; ``headers`` go onto the HTTP response."""

    def __init__(
        self,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, details)
        self.headers = headers or {}


class AuthenticationError(ServingError):
    """No API key was sent, or the key is unknown or revoked."""

    http_status = 401


class PermissionDeniedError(ServingError):
    """A valid key whose role may not call this route."""

    http_status = 403


class PayloadTooLargeError(ServingError):
    """A request body above the configured limit."""

    http_status = 413


class RateLimitedError(ServingError):
    """The key spent its token bucket; ``Retry-After`` says when a token is back."""

    http_status = 429


class ModelNotReadyError(ServingError):
    """The service has no model loaded yet (or could not load one)."""

    exit_code = 3
    http_status = 503


class ServiceUnavailableError(ServingError):
    """The server cannot take this request now; ``Retry-After`` says when to try again.

    Every scoring slot is busy (CPU-bound work a timeout cannot stop is bounded instead),
    or the shared rate limiter is unreachable and configured to fail closed.
    """

    http_status = 503


class ReloadError(ServingError):
    """A reload that failed; the model that was serving keeps serving."""

    exit_code = 3
    http_status = 409
