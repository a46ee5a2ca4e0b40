"""The model artifact is data: it round-trips exactly, refuses changed files, never unpickles.

The committed fixtures under ``tests/fixtures/artifacts/`` were written by an earlier
version of churnops; every later version must load them and give the same numbers.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops.errors import ModelIntegrityError, RegistryError
from churnops.scoring.artifact import (
    file_manifest,
    load_artifact,
    save_artifact,
    sign_manifest,
)
from tests.factories import make_customers
from tests.fixtures.make_artifacts import EXPECTED, FAMILIES, MODEL_DIR, ROOT, build

SCORING_SRC = Path(__file__).parents[2] / "src" / "churnops" / "scoring"
PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def saved(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A freshly built tiny model of each family, saved, with its manifest."""
    model = build(request.param)
    folder = tmp_path_factory.mktemp(request.param) / "model"
    return model, folder, save_artifact(model, folder)


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def test_round_trip_gives_the_same_numbers_and_reasons(saved: Any) -> None:
    """Loaded from its files, the model scores and explains exactly as the one saved."""
    model, folder, manifest = saved
    loaded = load_artifact(folder, manifest)
    X = model.encoder.transform(make_customers(300, seed=31))
    assert np.array_equal(loaded.probabilities(X), model.probabilities(X))
    assert loaded.threshold == model.threshold
    assert loaded.params == model.params
    assert loaded.contract == model.contract
    np.testing.assert_allclose(
        loaded.contributions(X)[0], model.contributions(X)[0], rtol=0, atol=1e-12
    )


def test_artifact_holds_no_pickle(saved: Any) -> None:
    """Only JSON and the boosters' own formats: no .pkl/.joblib, no pickle stream anywhere."""
    _model, folder, manifest = saved
    for name in manifest:
        assert not name.endswith((".pkl", ".pickle", ".joblib")), name
        assert not (folder / name).read_bytes().startswith(PICKLE_MAGIC), name
    meta = json.loads((folder / "model.json").read_text())
    assert meta["format_version"] == 1


@pytest.mark.parametrize("change", ["rewrite", "extra", "missing"])
def test_a_changed_file_is_refused_before_parsing(saved: Any, tmp_path: Path, change: str) -> None:
    """A rewritten, added or removed file raises ModelIntegrityError naming the file."""
    _model, folder, manifest = saved
    copy = _copy(folder, tmp_path)
    if change == "rewrite":
        target, name = copy / "estimator.json", "estimator.json"
        target.write_text(target.read_text().replace("1", "2", 1))
    elif change == "extra":
        name = "surprise.pkl"
        (copy / name).write_bytes(b"\x80\x04 not to be opened")
    else:
        name = "contract.json"
        (copy / name).unlink()
    with pytest.raises(ModelIntegrityError, match=name.replace(".", r"\.")):
        load_artifact(copy, manifest)


def test_a_signed_manifest_needs_the_right_key(saved: Any) -> None:
    """With a signing key, a missing or wrong HMAC refuses the model; the right one loads."""
    _model, folder, manifest = saved
    key = b"k" * 32
    signature = sign_manifest(manifest, key)
    load_artifact(folder, manifest, key, signature)
    with pytest.raises(ModelIntegrityError, match="no signature"):
        load_artifact(folder, manifest, key, None)
    with pytest.raises(ModelIntegrityError, match="does not verify"):
        load_artifact(folder, manifest, b"other", signature)
    forged = {**manifest, "model.json": "0" * 64}
    with pytest.raises(ModelIntegrityError, match="does not verify"):
        load_artifact(folder, forged, key, signature)


def test_newer_format_and_foreign_encoder_are_refused(saved: Any, tmp_path: Path) -> None:
    """A format this code does not know, or an encoder the contract does not derive, is refused."""
    _model, folder, _manifest = saved
    copy = _copy(folder, tmp_path)
    meta = json.loads((copy / "model.json").read_text())
    (copy / "model.json").write_text(json.dumps({**meta, "format_version": 2}))
    with pytest.raises(RegistryError, match="format_version 2"):
        load_artifact(copy, file_manifest(copy))
    (copy / "model.json").write_text(json.dumps(meta))
    spec = json.loads((copy / "encoder.json").read_text())
    spec["feature_names"] = list(reversed(spec["feature_names"]))
    (copy / "encoder.json").write_text(json.dumps(spec))
    with pytest.raises(RegistryError, match="feature_names"):
        load_artifact(copy, file_manifest(copy))


@pytest.mark.parametrize("name", ["model.json", "encoder.json", "estimator.json"])
def test_a_json_file_holding_no_object_is_a_clear_error(
    saved: Any, tmp_path: Path, name: str
) -> None:
    """A JSON file that parses to a number is 'cannot be read', not an AttributeError."""
    _model, folder, _manifest = saved
    copy = _copy(folder, tmp_path)
    (copy / name).write_text("2")
    with pytest.raises(RegistryError, match=f"{name} must hold a JSON object"):
        load_artifact(copy, file_manifest(copy))


def test_save_refuses_a_folder_with_other_files(saved: Any, tmp_path: Path) -> None:
    """An artifact folder holds only its own files (the manifest is the whole folder)."""
    model, _folder, _manifest = saved
    (tmp_path / "stray.txt").write_text("x")
    with pytest.raises(RegistryError, match="not empty"):
        save_artifact(model, tmp_path)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_committed_fixtures_load_and_reproduce_their_probabilities(family: str) -> None:
    """Models saved by an earlier churnops load (manifest verified) and score to 1e-12."""
    expected = json.loads((ROOT / family / EXPECTED).read_text())
    model = load_artifact(ROOT / family / MODEL_DIR, expected["manifest"])
    assert model.family == family
    got = model.predict_frame(pd.DataFrame(expected["records"]))["probability"].to_numpy()
    np.testing.assert_allclose(got, expected["probabilities"], rtol=0, atol=1e-12)


def test_scoring_never_imports_training() -> None:
    """No module of churnops.scoring imports churnops.training (not even lazily)."""
    offenders = []
    for path in sorted(SCORING_SRC.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith(("churnops.training", "sklearn", "scipy", "joblib")):
                    offenders.append(f"{path.name}:{node.lineno} {name}")
    assert offenders == []
