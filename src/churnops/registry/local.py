"""The last-known-good local copy of a served model, for when the registry is unreachable.

The API writes a copy of every champion it loads from the registry under
``CHURNOPS_HOME/serving/last-good/``; ``churnops serve`` starts from it (with a warning)
when the registry cannot be read. The copy is the same data files the registry holds
(already verified when they were loaded), with the version's description and the file
manifest beside them, and it is verified again when it is read back: a copy that was
changed on disk is refused like a tampered registry artifact.

Layout: each copy is a folder ``v<version>-<random>/`` (``scoring/`` + ``version.json``
+ ``manifest.json``), and ``current.json`` names the live one. The pointer is replaced
atomically (temp file + rename) after the folder is complete, so a crash never leaves
half a copy in use; older folders are removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from churnops.config import Settings
from churnops.errors import ModelNotFoundError
from churnops.registry.catalog import SCORING
from churnops.registry.models import LoadedModel, RegisteredVersion, signing_key

POINTER_FILE = "current.json"
VERSION_FILE = "version.json"
MANIFEST_FILE = "manifest.json"


def last_good_dir(settings: Settings) -> Path:
    """Return the folder of the last-known-good copy."""
    return settings.home / "serving" / "last-good"


def save_last_good(settings: Settings, loaded: LoadedModel) -> Path:
    """Copy ``loaded``'s verified files as the last-known-good copy; return its folder."""
    root = last_good_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    copy = Path(tempfile.mkdtemp(dir=root, prefix=f"v{loaded.version.version}-"))
    shutil.copytree(loaded.files, copy / SCORING)
    (copy / VERSION_FILE).write_text(json.dumps(asdict(loaded.version)))
    integrity = {"manifest": loaded.manifest, "signature": loaded.signature}
    (copy / MANIFEST_FILE).write_text(json.dumps(integrity))
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{POINTER_FILE}.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({"folder": copy.name}, handle)
        Path(tmp).replace(root / POINTER_FILE)
    finally:
        Path(tmp).unlink(missing_ok=True)
    for old in root.iterdir():  # earlier copies (and files of older layouts)
        if old.is_dir() and old != copy:
            shutil.rmtree(old, ignore_errors=True)
        elif old.is_file() and old.name != POINTER_FILE and not old.name.startswith("."):
            old.unlink(missing_ok=True)
    return copy


def load_last_good(settings: Settings) -> LoadedModel:
    """Read and verify the last-known-good copy, or raise ModelNotFoundError when there is none.

    Raises:
        ModelNotFoundError: no copy was ever written.
        ModelIntegrityError: the copy's files differ from the manifest written with them.
    """
    from churnops.scoring.artifact import load_artifact

    root = last_good_dir(settings)
    try:
        copy = root / json.loads((root / POINTER_FILE).read_text())["folder"]
        version = RegisteredVersion(**json.loads((copy / VERSION_FILE).read_text()))
        integrity = json.loads((copy / MANIFEST_FILE).read_text())
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelNotFoundError(
            "No last-known-good copy of the model under CHURNOPS_HOME/serving/last-good "
            f"({type(exc).__name__})."
        ) from exc
    manifest, signature = integrity["manifest"], integrity.get("signature")
    model = load_artifact(copy / SCORING, manifest, signing_key(settings), signature)
    return LoadedModel(model, version, copy / SCORING, manifest, signature)
