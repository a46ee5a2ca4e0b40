"""The last-known-good local copy of a served model, for when the registry is unreachable.

The API writes a copy of every version it loads from the registry under
``CHURNOPS_HOME/serving/last-good/``; ``churnops serve`` starts from it (with a warning)
when MLflow cannot be reached. It is the same pickled ScoringModel the registry holds,
written atomically (temp file + rename), so a crash never leaves half a copy.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from churnops.config import Settings
from churnops.errors import ModelNotFoundError
from churnops.registry.models import LoadedModel, RegisteredVersion

MODEL_FILE = "scoring_model.joblib"
VERSION_FILE = "version.json"


def last_good_dir(settings: Settings) -> Path:
    """Return the folder of the last-known-good copy."""
    return settings.home / "serving" / "last-good"


def save_last_good(settings: Settings, loaded: LoadedModel) -> Path:
    """Write ``loaded`` as the last-known-good copy, atomically; return its folder."""
    import joblib

    folder = last_good_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for name, write in (
        (MODEL_FILE, lambda f: joblib.dump(loaded.model, f)),
        (VERSION_FILE, lambda f: f.write(json.dumps(asdict(loaded.version)).encode())),
    ):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
            Path(tmp).replace(folder / name)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return folder


def load_last_good(settings: Settings) -> LoadedModel:
    """Read the last-known-good copy, or raise ModelNotFoundError when there is none."""
    import joblib

    folder = last_good_dir(settings)
    try:
        version = RegisteredVersion(**json.loads((folder / VERSION_FILE).read_text()))
        model = joblib.load(folder / MODEL_FILE)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelNotFoundError(
            "No last-known-good copy of the model under CHURNOPS_HOME/serving/last-good "
            f"({type(exc).__name__})."
        ) from exc
    return LoadedModel(model, version)
