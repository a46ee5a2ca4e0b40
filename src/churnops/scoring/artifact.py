"""The model artifact: a folder of data files, hashed, optionally signed, never unpickled.

Layout (format version 1, described for people in ``docs/model-format.md``)::

    model.json         format_version, family, threshold, params, which files hold what
    contract.json      the DataContract (the API, validation and the encoder derive from it)
    encoder.json       the encoder's layout: width, source columns, encoded feature names
    estimator.json     the family's own numbers (see churnops.scoring.estimators)
    lightgbm_model.txt | xgboost_model.ubj     the booster in its library's own format
    calibrator.json    present only when the model is calibrated

Why: a pickle is code — loading one runs whatever it names, and it breaks when a class
moves. These files are read by ``json`` and the boosters' own parsers only. Integrity is
a SHA-256 per file, recorded in the registry apart from the artifact store and checked
before any file is parsed; a missing, extra or changed file refuses to load. With a
signing key, an HMAC-SHA256 over the manifest also proves who registered it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from churnops.data.contract import DataContract
from churnops.errors import ModelIntegrityError, RegistryError
from churnops.scoring.calibration import load_calibrator, save_calibrator
from churnops.scoring.estimators import load_estimator
from churnops.scoring.jsonfile import read_object
from churnops.scoring.model import ScoringModel

FORMAT_VERSION = 1
MODEL_FILE = "model.json"
CONTRACT_FILE = "contract.json"
ENCODER_FILE = "encoder.json"
_CHUNK = 1 << 20


def encoder_spec(model: ScoringModel) -> dict[str, Any]:
    """Return the encoder layout a model was trained with (what its estimator's columns mean)."""
    encoder = model.encoder
    return {
        "width": int(encoder.width),
        "source_columns": list(encoder.source_columns),
        "feature_names": list(encoder.feature_names),
    }


def save_artifact(model: ScoringModel, folder: str | Path) -> dict[str, str]:
    """Write ``model`` as data files into ``folder`` (new or empty); return its manifest.

    The manifest maps each file's path relative to ``folder`` to its SHA-256 hex digest.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise RegistryError(f"{folder} is not empty: an artifact folder holds only its files.")
    files: dict[str, Any] = {
        "contract": CONTRACT_FILE,
        "encoder": ENCODER_FILE,
        "estimator": model.estimator.save(folder),
        "calibrator": None,
    }
    if model.calibrator is not None:
        files["calibrator"] = save_calibrator(model.calibrator, folder)
    (folder / CONTRACT_FILE).write_text(model.contract.model_dump_json(indent=2))
    (folder / ENCODER_FILE).write_text(json.dumps(encoder_spec(model), indent=1))
    meta = {
        "format_version": FORMAT_VERSION,
        "family": model.family,
        "threshold": float(model.threshold),
        "params": model.params,
        "calibrator": model.calibrator.method if model.calibrator is not None else None,
        "files": files,
    }
    (folder / MODEL_FILE).write_text(json.dumps(meta, indent=1, allow_nan=False))
    return file_manifest(folder)


def file_manifest(folder: str | Path) -> dict[str, str]:
    """Return ``{relative path: SHA-256}`` of every file under ``folder``, sorted by path."""
    folder = Path(folder)
    found = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in found}


def manifest_json(manifest: dict[str, str]) -> str:
    """Return the canonical JSON of a manifest (sorted keys, no spaces): what is signed."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"))


def sign_manifest(manifest: dict[str, str], key: bytes) -> str:
    """Return the HMAC-SHA256 (hex) of the manifest's canonical JSON under ``key``."""
    return hmac.new(key, manifest_json(manifest).encode(), hashlib.sha256).hexdigest()


def verify_files(folder: str | Path, expected: dict[str, str]) -> None:
    """Raise ModelIntegrityError unless ``folder`` holds exactly the expected files and bytes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelIntegrityError(f"Model artifact folder {folder} does not exist.")
    actual = file_manifest(folder)
    problems = [f"{name}: missing" for name in sorted(set(expected) - set(actual))]
    problems += [
        f"{name}: not in the registered manifest" for name in sorted(set(actual) - set(expected))
    ]
    problems += [
        f"{name}: SHA-256 {actual[name][:12]}… differs from the registered {expected[name][:12]}…"
        for name in sorted(set(actual) & set(expected))
        if not hmac.compare_digest(actual[name], expected[name])
    ]
    if problems:
        raise ModelIntegrityError(
            f"Model artifact {folder} does not match its registered manifest; refusing to "
            "load it: " + "; ".join(problems),
            {"problems": problems},
        )


def verify_signature(manifest: dict[str, str], key: bytes, signature: str | None) -> None:
    """Raise ModelIntegrityError unless ``signature`` is the manifest's HMAC under ``key``."""
    if not signature:
        raise ModelIntegrityError(
            "A model signing key is set (CHURNOPS_MODEL_SIGNING_KEY) but this model version "
            "carries no signature; refusing to load it."
        )
    if not hmac.compare_digest(sign_manifest(manifest, key), signature):
        raise ModelIntegrityError(
            "The model version's manifest signature does not verify under the configured "
            "CHURNOPS_MODEL_SIGNING_KEY; refusing to load it."
        )


def load_artifact(
    folder: str | Path,
    expected: dict[str, str] | None = None,
    signing_key: bytes | None = None,
    signature: str | None = None,
) -> ScoringModel:
    """Load a model artifact, verifying every file before it is parsed.

    Args:
        folder: the artifact folder written by :func:`save_artifact`.
        expected: the manifest recorded at registration. None only for a folder the
            caller itself just wrote (nothing to check it against).
        signing_key: when set, ``signature`` must be the HMAC of ``expected``.
        signature: the HMAC recorded at registration.

    Raises:
        ModelIntegrityError: a missing, extra or changed file, or a bad signature.
        RegistryError: files that verify but are not a model this version can read.
    """
    folder = Path(folder)
    if signing_key is not None:
        if expected is None:
            raise ModelIntegrityError("A signed load needs the registered manifest.")
        verify_signature(expected, signing_key, signature)
    if expected is not None:
        verify_files(folder, expected)
    try:
        meta = read_object(folder / MODEL_FILE)
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise RegistryError(
                f"{MODEL_FILE} has format_version {version!r}; this churnops reads "
                f"version {FORMAT_VERSION} (see docs/model-format.md)."
            )
        files = meta["files"]
        contract = DataContract.model_validate_json((folder / files["contract"]).read_text())
        estimator = load_estimator(meta["family"], folder)
        calibrator = load_calibrator(folder) if files.get("calibrator") else None
        model = ScoringModel(
            contract,
            estimator,
            meta["family"],
            float(meta["threshold"]),
            calibrator,
            params=dict(meta.get("params") or {}),
        )
        saved_spec = read_object(folder / files["encoder"])
    except RegistryError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RegistryError(
            f"Model artifact {folder} cannot be read: {type(exc).__name__}: {exc}"
        ) from exc
    derived = encoder_spec(model)
    if saved_spec != derived:
        changed = sorted(k for k in derived if saved_spec.get(k) != derived[k])
        raise RegistryError(
            f"Model artifact {folder}: {ENCODER_FILE} differs from the encoder its contract "
            f"derives ({', '.join(changed) or 'keys'}); the estimator's columns would be "
            "misread, so it is not loaded."
        )
    if estimator.width != derived["width"]:
        raise RegistryError(
            f"Model artifact {folder}: the estimator reads {estimator.width} columns, the "
            f"encoder writes {derived['width']}."
        )
    return model


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
