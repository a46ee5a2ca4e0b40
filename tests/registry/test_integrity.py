"""Every load verifies the registered files; reads of a SQL registry import no MLflow.

One module home: v1 = a logistic champion (unsigned), v2 = a LightGBM challenger registered
with a signing key. Tests that change a file in the artifact store put it back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops import registry
from churnops.config import Settings, get_settings
from churnops.errors import ModelIntegrityError
from churnops.registry.catalog import MANIFEST_KEY, SCORING, local_path
from churnops.scoring.artifact import file_manifest
from tests.conftest import home_tracking_uri
from tests.factories import make_customers, obvious_churner

KEY = "a-test-signing-key-of-32-bytes!!"
HEAVY = ("mlflow", "sklearn", "optuna", "shap", "churnops.training", "lightgbm", "xgboost")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 logistic (champion, unsigned) and v2 LightGBM (challenger, signed)."""
    from churnops.stages import train_and_register

    home = tmp_path_factory.mktemp("integrity") / "home"
    uri = home_tracking_uri(home)
    df = make_customers(400, seed=3)
    for family, key in (("logistic", None), ("lightgbm", KEY)):
        settings = Settings(
            home=home, trials=1, cv_folds=2, tracking_uri=uri, model_signing_key=key
        )
        train_and_register(
            df, settings, target="churn", id_column="customer_id", families=[family], trials=1
        )
    return home


def _settings(home: Path, **overrides: Any) -> Settings:
    return Settings(home=home, tracking_uri=home_tracking_uri(home), **overrides)


def _files(settings: Settings, version: str) -> Path:
    """Return the version's churnops files in the artifact store (read from the registry)."""
    from mlflow import MlflowClient

    client = MlflowClient(settings.resolved_tracking_uri)
    folder = local_path(client.get_model_version_download_uri(settings.model_name, version))
    assert folder is not None
    return folder / "artifacts" / SCORING


@contextmanager
def tampered(path: Path, change: Any) -> Iterator[None]:
    """Rewrite ``path`` with ``change(text)`` for the duration, then restore it byte for byte."""
    original = path.read_bytes()
    path.write_text(change(original.decode()))
    try:
        yield
    finally:
        path.write_bytes(original)


def test_registration_records_every_file_hash_apart_from_the_store(home: Path) -> None:
    """Version tags hold the manifest of exactly the stored files; the model has no pickle."""
    from mlflow import MlflowClient

    settings = _settings(home)
    client = MlflowClient(settings.resolved_tracking_uri)
    for version in ("1", "2"):
        tags = client.get_model_version(settings.model_name, version).tags
        folder = _files(settings, version)
        assert json.loads(tags[MANIFEST_KEY]) == file_manifest(folder)
        assert tags["churnops.format_version"] == "1"
        model_dir = folder.parents[1]
        names = [p.name for p in model_dir.rglob("*") if p.is_file()]
        assert not [n for n in names if n.endswith((".pkl", ".joblib", ".pickle"))], names
    assert "churnops.hmac" not in client.get_model_version(settings.model_name, "1").tags
    assert len(client.get_model_version(settings.model_name, "2").tags["churnops.hmac"]) == 64


@pytest.mark.parametrize("name", ["contract.json", "estimator.json"])
def test_a_tampered_store_file_refuses_to_load(home: Path, name: str) -> None:
    """A file changed in the artifact store fails every load with its name."""
    settings = _settings(home)
    path = _files(settings, "1") / name
    with (
        tampered(path, lambda text: text.replace("0", "1", 1)),
        pytest.raises(ModelIntegrityError, match=rf"models:/churn-model/1.*{name}"),
    ):
        registry.load_model(settings)
    assert registry.load_model(settings).version.version == "1"


def test_signed_versions_need_the_key_and_unsigned_ones_are_refused_with_it(home: Path) -> None:
    """With a signing key set, only versions signed by it load."""
    signed = _settings(home, model_signing_key=KEY)
    assert registry.load_model(signed, version="2").model.family == "lightgbm"
    with pytest.raises(ModelIntegrityError, match="no signature"):
        registry.load_model(signed, version="1")
    with pytest.raises(ModelIntegrityError, match="does not verify"):
        registry.load_model(_settings(home, model_signing_key="another key"), version="2")
    assert registry.load_model(_settings(home), version="2").version.version == "2"


def test_last_known_good_copy_is_verified_when_read(home: Path, tmp_path: Path) -> None:
    """The local copy is the verified files plus their manifest; a changed copy is refused."""
    settings = _settings(home).model_copy(update={"home": tmp_path / "serving-home"})
    loaded = registry.load_model(_settings(home))
    folder = registry.save_last_good(settings, loaded)
    again = registry.load_last_good(settings)
    X = loaded.model.encoder.transform(make_customers(50, seed=4))
    assert np.array_equal(again.model.probabilities(X), loaded.model.probabilities(X))
    assert not list(folder.rglob("*.joblib"))
    contract = folder / SCORING / "contract.json"
    contract.write_text(contract.read_text().replace("0", "1", 1))
    with pytest.raises(ModelIntegrityError, match=r"contract\.json"):
        registry.load_last_good(settings)


def test_reload_of_a_tampered_champion_is_409_and_the_old_model_keeps_serving(
    home: Path, tmp_path: Path
) -> None:
    """POST /v1/admin/reload refuses changed files; /v1/predict still answers with v1."""
    from fastapi.testclient import TestClient

    from churnops.serving import create_app
    from churnops.serving.auth import create_key

    settings = _settings(
        home,
        database_url=f"sqlite:///{tmp_path / 'ops.db'}",
        serve_access_log=False,
        serve_key_cache_seconds=0.0,
    )
    admin = {"Authorization": f"Bearer {create_key(settings, 'admin', 'admin')['key']}"}
    scorer = {"Authorization": f"Bearer {create_key(settings, 'scorer', 'scorer')['key']}"}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for _ in range(200):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        before = client.post("/v1/predict", json=obvious_churner(), headers=scorer)
        assert before.status_code == 200, before.text
        path = _files(settings, "1") / "lightgbm_model.txt"
        path = path if path.exists() else _files(settings, "1") / "contract.json"
        with tampered(path, lambda text: text.replace("0", "1", 1)):
            r = client.post("/v1/admin/reload", headers=admin)
            assert r.status_code == 409, r.text
            assert r.json()["serving_version"] == "1"
            assert "does not match its registered manifest" in r.json()["message"]
            after = client.post("/v1/predict", json=obvious_churner(), headers=scorer)
        assert after.status_code == 200
        assert after.json()["model"]["version"] == "1"
        assert after.json()["probability"] == before.json()["probability"]


def test_score_command_exits_1_on_a_tampered_champion(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`churnops score` refuses to score with changed files: exit 1 and the file named."""
    from typer.testing import CliRunner

    from churnops.cli import app

    source = tmp_path / "customers.csv"
    make_customers(30, seed=5).drop(columns="churn").to_csv(source, index=False)
    monkeypatch.setenv("CHURNOPS_HOME", str(home))
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", f"sqlite:///{tmp_path / 'ops.db'}")
    get_settings.cache_clear()
    path = _files(_settings(home), "1") / "contract.json"
    with tampered(path, lambda text: text.replace("0", "1", 1)):
        result = CliRunner().invoke(app, ["score", str(source)])
    assert result.exit_code == 1, result.output
    assert "contract.json" in result.output
    assert "registered manifest" in result.output


_PROBE = """
import json, sys
from churnops.config import Settings
from churnops.scoring import Predictor
plain = Settings(home=sys.argv[1], tracking_uri=sys.argv[2])
signed = Settings(home=sys.argv[1], tracking_uri=sys.argv[2], model_signing_key=sys.argv[3])
record = json.loads(sys.argv[4])
found = {}
for settings, alias, version in ((plain, "champion", None), (signed, None, "2")):
    predictor = Predictor.from_registry(settings, alias=alias, version=version)
    found[predictor.family] = predictor.score_one(record)[0]
print(json.dumps({"scores": found, "modules": sorted(sys.modules)}))
"""

# What numba itself imports to compile one function (its SciPy version and BLAS checks).
_BASELINE = """
import json, sys, numba, numpy as np
numba.njit(lambda x: x.sum())(np.zeros(3))
print(json.dumps(sorted(sys.modules)))
"""


def test_a_fresh_process_scores_without_mlflow_sklearn_or_training(home: Path) -> None:
    """Loading the champion (logistic) and a LightGBM version and scoring imports none of
    MLflow, scikit-learn, Optuna, SHAP, the boosters' packages or churnops.training.

    SciPy appears only as far as numba imports it to compile anything (measured here).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_"))}
    record = {k: v for k, v in obvious_churner().items()}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(home), home_tracking_uri(home), KEY, json.dumps(record)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result["scores"]) == {"logistic", "lightgbm"}
    modules = set(result["modules"])
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == []
    baseline = subprocess.run(
        [sys.executable, "-c", _BASELINE], capture_output=True, text=True, timeout=120, check=True
    )
    numba_scipy = {m for m in json.loads(baseline.stdout) if m.startswith("scipy")}
    assert {m for m in modules if m.startswith("scipy")} <= numba_scipy


def test_models_json_reads_the_registry_without_mlflow(home: Path) -> None:
    """`churnops models --json` lists versions from the SQL store without importing MLflow."""
    code = (
        "import sys\n"
        "from churnops.cli import app\n"
        "try:\n"
        "    app(['models', '--json'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('MLFLOW' if 'mlflow' in sys.modules else 'NO-MLFLOW')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_"))}
    env.update(CHURNOPS_HOME=str(home), CHURNOPS_DATABASE_URL=f"sqlite:///{home / 'ops.db'}")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    *printed, verdict = out.stdout.strip().splitlines()
    assert verdict == "NO-MLFLOW"
    listed = json.loads("\n".join(printed))
    assert [v["version"] for v in listed["versions"]] == ["2", "1"]
    assert listed["versions"][1]["aliases"] == ["champion"]


def test_catalog_reads_equal_mlflow_client(home: Path) -> None:
    """The SQL catalog and MlflowClient describe every version the same way."""
    from dataclasses import replace

    from churnops.registry.catalog import MlflowCatalog, SqlCatalog

    uri = home_tracking_uri(home)
    ours, theirs = (
        SqlCatalog(uri).versions("churn-model"),
        MlflowCatalog(uri).versions("churn-model"),
    )
    assert [replace(r, storage_location=None) for r in ours] == theirs  # MLflow hides it
    assert SqlCatalog(uri).alias("churn-model", "champion") == "1"
    assert SqlCatalog(uri).version("churn-model", "7") is None


def test_a_committed_fixture_loads_through_mlflow_pyfunc(tmp_path: Path) -> None:
    """MLflow's own loader reads a fixture saved as our pyfunc: the same probabilities."""
    import mlflow.pyfunc

    from churnops.registry.catalog import FORMAT_KEY
    from churnops.registry.pyfunc import CODE_PATH
    from churnops.scoring.artifact import manifest_json
    from tests.fixtures.make_artifacts import EXPECTED, MODEL_DIR, ROOT

    expected = json.loads((ROOT / "lightgbm" / EXPECTED).read_text())
    target = tmp_path / "pyfunc"
    mlflow.pyfunc.save_model(
        str(target),
        python_model=str(CODE_PATH),
        artifacts={SCORING: str(ROOT / "lightgbm" / MODEL_DIR)},
        model_config={MANIFEST_KEY: manifest_json(expected["manifest"]), FORMAT_KEY: "1"},
        pip_requirements=["churnops"],
    )
    model = mlflow.pyfunc.load_model(str(target))
    got = model.predict(pd.DataFrame(expected["records"]))["probability"].to_numpy()
    np.testing.assert_allclose(got, expected["probabilities"], rtol=0, atol=1e-12)
