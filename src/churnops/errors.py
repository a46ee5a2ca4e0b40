"""One error tree for churnops, mapped once to CLI exit codes and once to HTTP statuses.

    ChurnopsError                     exit 1, HTTP 500
    ├── ConfigError                   exit 2, HTTP 500  settings or options that cannot work
    ├── DataError                     exit 1, HTTP 422  a table we cannot use
    │   ├── DataSourceError           exit 1, HTTP 422  missing file, unknown format, bad SQL table
    │   ├── ContractError             exit 1, HTTP 422  a contract that cannot be built or read
    │   └── DataValidationError       exit 1, HTTP 422  rows/columns that break the contract
    ├── ScoringInputError             exit 1, HTTP 422  a record the model cannot score
    ├── ModelNotFoundError            exit 3, HTTP 503  no such registered model, version or alias
    └── RegistryError                 exit 3, HTTP 503  the tracking store refused or failed

Every error carries a message meant for a person (which rows, which columns, what was
expected) and an optional ``details`` dict for ``--json`` output and API bodies.
"""

from __future__ import annotations

from typing import Any


class ChurnopsError(Exception):
    """Base of every error churnops raises on purpose."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe description for CLI ``--json`` output and API error bodies."""
        return {"error": type(self).__name__, "message": self.message, **self.details}


class ConfigError(ChurnopsError):
    """Settings or command options that cannot work together."""

    exit_code = 2


class DataError(ChurnopsError):
    """A table churnops cannot use as given."""

    http_status = 422


class DataSourceError(DataError):
    """A source that cannot be read: missing file, unknown format, unknown SQL table."""


class ContractError(DataError):
    """A data contract that cannot be inferred, read or applied."""


class DataValidationError(DataError):
    """Rows or columns that break the data contract; ``details['issues']`` lists them."""


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
