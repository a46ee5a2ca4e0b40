"""``churnops init``: a commented churnops.yaml that documents every setting and loads back."""

from __future__ import annotations

import json
import random
import re
import textwrap
from pathlib import Path
from typing import get_args

import pytest
import yaml
from typer.testing import CliRunner

from churnops.cli import app
from churnops.cli.init import SETTING_LIKE, WIDTH, _comment
from churnops.config import Settings, setting_groups
from tests.factories import make_customers

runner = CliRunner()
SETTING_LINE = re.compile(r"^(?:# )?([a-z][a-z0-9_]*):(?: (.*))?$")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder holding a customer table, as the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    make_customers(50, seed=3).to_csv(tmp_path / "data" / "customers.csv", index=False)
    return tmp_path


def init(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, ["init", *args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def setting_lines(text: str) -> dict[str, str | None]:
    """Return every ``name: value`` line of the file, commented out or not, by name."""
    found = {}
    for line in text.splitlines():
        match = SETTING_LINE.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_init_writes_a_file_settings_reads_back(folder: Path) -> None:
    result = init("data/customers.csv", "--target", "churn", "--id", "customer_id")
    assert result["files"] == ["churnops.yaml"]
    assert result["rows"] == 50
    assert {"name": "contract", "role": "feature", "kind": "categorical"} in result["columns"]
    settings = Settings()  # reads ./churnops.yaml
    assert settings.pipeline_source == Path("data/customers.csv")
    assert settings.pipeline_target == "churn"
    assert settings.pipeline_id == "customer_id"
    assert settings.trials == Settings.model_fields["trials"].default  # nothing else pinned
    data = yaml.safe_load((folder / "churnops.yaml").read_text())
    assert set(data) == {"pipeline_source", "pipeline_target", "pipeline_id"}


def test_the_file_documents_every_setting_with_its_default(folder: Path) -> None:
    init("data/customers.csv", "--target", "churn")
    text = (folder / "churnops.yaml").read_text()
    assert text.startswith("# churnops.yaml")
    assert "CHURNOPS_<NAME>" in text
    lines = setting_lines(text)
    assert list(lines) == [
        "pipeline_source",
        "pipeline_target",
        "pipeline_id",
        *[n for n in Settings.model_fields if not n.startswith("pipeline_")],
    ]
    assert lines["pipeline_id"] == "null"  # no --id
    # Uncommenting every line loads, and each value shown is the setting's real default.
    uncommented = yaml.safe_load("\n".join(f"{k}: {v or ''}" for k, v in lines.items()))
    loaded = Settings(**{k: v for k, v in uncommented.items() if v is not None})
    for name, field in Settings.model_fields.items():
        if not name.startswith("pipeline_"):
            assert getattr(loaded, name) == field.get_default(call_default_factory=True), name
    # Each setting's description (and a Literal's choices) is the comment above it.
    trials = Settings.model_fields["trials"]
    assert f"# {trials.description}\n# trials: {trials.default}\n" in text
    assert f"One of: {', '.join(get_args(Settings.model_fields['metric'].annotation))}." in text
    assert f"# families: [{', '.join(Settings.model_fields['families'].default)}]\n" in text


def test_the_columns_are_listed_with_what_the_contract_inferred(folder: Path) -> None:
    init("data/customers.csv", "--target", "churn", "--id", "customer_id")
    text = (folder / "churnops.yaml").read_text()
    columns = {
        parts[0]: parts[1:3]
        for line in text.splitlines()
        if line.startswith("#   ") and (parts := line[4:].split())
    }
    assert columns["customer_id"] == ["id", "categorical"]
    assert columns["churn"] == ["target", "categorical"]
    assert columns["contract"] == ["feature", "categorical"]
    assert columns["tenure"] == ["feature", "numeric"]
    assert "churn = 'Yes'" in text


def test_groups_follow_config_py_and_point_to_their_docs(folder: Path) -> None:
    init("data/customers.csv", "--target", "churn")
    text = (folder / "churnops.yaml").read_text()
    groups = setting_groups()
    assert [n for g in groups for n in g.names] == list(Settings.model_fields)
    serving = next(g for g in groups if "serve_port" in g.names)
    assert serving.page == "serving.md"
    assert all(n.startswith("serve_") for n in serving.names)
    assert "# --- Serving ---" in text
    assert "# See docs/serving.md." in text
    headers = [line for line in text.splitlines() if line.startswith("# --- ")]
    assert len(headers) == 1 + sum(
        1 for g in groups if any(not n.startswith("pipeline_") for n in g.names)
    )
    for group in groups:
        if group.page:
            assert (Path(__file__).parents[1] / "docs" / group.page).is_file(), group.page


def test_secrets_and_urls_are_never_written(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNOPS_MODEL_SIGNING_KEY", "Sup3rSecret")
    monkeypatch.setenv("CHURNOPS_DATABASE_URL", "postgresql+psycopg://svc:PassW0rd@db/churn")
    init("data/customers.csv", "--target", "churn")
    text = (folder / "churnops.yaml").read_text()
    assert "Sup3rSecret" not in text
    assert "PassW0rd" not in text
    lines = setting_lines(text)
    for name in ("model_signing_key", "database_url", "tracking_uri", "redis_url"):
        assert lines[name] is None, name  # "# name:" and nothing after it
    comments = " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    assert "set MLFLOW_TRACKING_URI or CHURNOPS_TRACKING_URI in the environment" in comments


def test_an_existing_file_is_kept_without_force(folder: Path) -> None:
    (folder / "churnops.yaml").write_text("trials: 3\n")
    error = init("data/customers.csv", "--target", "churn", code=2)
    assert error["error"] == "ConfigError"
    assert "--force" in error["message"]
    assert (folder / "churnops.yaml").read_text() == "trials: 3\n"
    human = runner.invoke(app, ["init", "data/customers.csv", "--target", "churn"])
    assert human.exit_code == 2
    assert "already exist" in human.output
    init("data/customers.csv", "--target", "churn", "--force")
    assert Settings().pipeline_target == "churn"


def test_a_bad_table_or_target_is_a_clear_error(folder: Path) -> None:
    missing = init("data/nope.csv", "--target", "churn", code=1)
    assert missing["error"] == "DataSourceError"
    wrong = init("data/customers.csv", "--target", "churned", code=1)
    assert wrong["error"] == "ContractError"
    assert "'churned' not found" in wrong["message"]
    assert not (folder / "churnops.yaml").exists()


def test_pipeline_source_is_relative_to_the_file(
    folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    init("data/customers.csv", "--target", "churn", "--output", "data/churnops.yaml")
    inside = yaml.safe_load((folder / "data" / "churnops.yaml").read_text())
    assert inside["pipeline_source"] == "customers.csv"
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "churnops.yaml"
    init("data/customers.csv", "--target", "churn", "--output", str(elsewhere))
    outside = yaml.safe_load(elsewhere.read_text())
    assert outside["pipeline_source"] == str((folder / "data" / "customers.csv").resolve())


def test_no_line_of_prose_reads_as_a_setting() -> None:
    # "default:" lands at the start of the second line when wrapped plainly.
    text = " ".join(["aaaa"] * 19) + " default: on the demo, it helps"
    assert textwrap.wrap(text, WIDTH - 2, initial_indent="# ", subsequent_indent="# ")[
        1
    ].startswith("# default:")
    lines = _comment(text)
    assert lines == ["# " + " ".join(["aaaa"] * 18), "# aaaa default: on the demo, it helps"]
    assert _comment("note: starts like a setting") == ["# - note: starts like a setting"]
    rng = random.Random(7)
    vocabulary = ["word", "x", "default:", "trials:", "the", "a_b:", "longerword", "Note:"]
    for _ in range(500):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(1, 80))]
        lines = _comment(" ".join(words))
        assert not any(SETTING_LIKE.match(line) for line in lines), lines
        assert all(len(line) <= WIDTH for line in lines)
        kept = " ".join(line[2:] for line in lines).removeprefix("- ").split()
        assert kept == words


def test_the_written_file_has_no_prose_line_that_reads_as_a_setting(folder: Path) -> None:
    init("data/customers.csv", "--target", "churn")
    text = (folder / "churnops.yaml").read_text()
    names = set(Settings.model_fields)
    for line in text.splitlines():
        match = SETTING_LINE.match(line)
        if match:
            assert match.group(1) in names, line
