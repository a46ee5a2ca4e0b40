"""churnops: churn prediction from a customer table to production and back.

The names below are the Python API (see ``docs/python-api.md``)::

    import churnops

    contract = churnops.infer_contract(df, target="churned", id="account_id")
    result = churnops.train(df, contract=contract)
    model = churnops.load_model("champion")
    model.predict(df)

They load on first use (PEP 562): ``churnops --help``, the API server and the batch
report import this package, and must not pay for pandas, MLflow or the training code
just because a notebook might want them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from churnops.api import (
        Model,
        TrainResult,
        evaluate,
        infer_contract,
        load_model,
        monitor,
        score,
        train,
        validate,
    )
    from churnops.client import Client
    from churnops.config import Settings, get_settings
    from churnops.data.contract import DataContract
    from churnops.errors import ChurnopsError

    __version__: str

_HOMES = {
    "infer_contract": "churnops.api",
    "validate": "churnops.api",
    "train": "churnops.api",
    "TrainResult": "churnops.api",
    "load_model": "churnops.api",
    "Model": "churnops.api",
    "score": "churnops.api",
    "monitor": "churnops.api",
    "evaluate": "churnops.api",
    "Client": "churnops.client",
    "Settings": "churnops.config",
    "get_settings": "churnops.config",
    "DataContract": "churnops.data.contract",
    "ChurnopsError": "churnops.errors",
}

__all__ = [
    "ChurnopsError",
    "Client",
    "DataContract",
    "Model",
    "Settings",
    "TrainResult",
    "__version__",
    "evaluate",
    "get_settings",
    "infer_contract",
    "load_model",
    "monitor",
    "score",
    "train",
    "validate",
]


def __getattr__(name: str) -> Any:
    """Import an API name from its module on first use, then keep it here."""
    if name == "__version__":
        value: Any = _version()
    elif name in _HOMES:
        value = getattr(import_module(_HOMES[name]), name)
    else:  # also how ``from churnops import registry`` falls through to the submodule
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _version() -> str:
    """Return the installed distribution's version ("0+unknown" when run from bare source)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("churnops")
    except PackageNotFoundError:
        return "0+unknown"
