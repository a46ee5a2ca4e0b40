"""``CHURNOPS_<SETTING>_FILE``: every setting, secrets first, can be read from a mounted file.

Kubernetes and Docker hand secrets over as files; these tests pin the rules a deployment
relies on: the file's content (less its trailing newline) is the value, a variable and its
``_FILE`` variant together are refused, and an unreadable file is a clear ConfigError that
names the variable and the path but never the content.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from churnops.cli import app
from churnops.config import SecretFileSettingsSource, Settings
from churnops.errors import ConfigError

SECRET = "postgresql+psycopg://churnops:s3cr3t-pw@db.internal:5432/churnops"


def _secret_file(tmp_path: Path, text: str, name: str = "secret") -> Path:
    path = tmp_path / "run-secrets" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("database_url", SECRET),
        ("tracking_uri", "postgresql+psycopg://mlflow:pw@db.internal:5432/mlflow"),
        ("redis_url", "redis://:redis-pw@redis.internal:6379/0"),
        ("model_signing_key", "hmac-key-with-trailing-spaces  "),
    ],
)
def test_each_secret_setting_reads_its_file_without_the_trailing_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, field: str, value: str
) -> None:
    """`echo value > file` (a trailing newline) gives exactly ``value``; inner spaces stay."""
    path = _secret_file(tmp_path, value + "\n")
    monkeypatch.setenv(f"CHURNOPS_{field.upper()}_FILE", str(path))
    got: Any = getattr(Settings(), field)
    if field == "model_signing_key":
        got = got.get_secret_value()
    assert got == value


def test_every_setting_has_a_file_variant(tmp_path: Path) -> None:
    """No list to keep in step: a setting added tomorrow is readable from a file too."""
    environ = {}
    for name, field in Settings.model_fields.items():
        text = '["x"]' if SecretFileSettingsSource(Settings).field_is_complex(field) else "x"
        environ[f"CHURNOPS_{name.upper()}_FILE"] = str(_secret_file(tmp_path, text, name))
    values = SecretFileSettingsSource(Settings, environ=environ)()
    assert set(values) == set(Settings.model_fields)
    assert values["serve_trusted_hosts"] == ["x"]  # a list setting takes JSON, as its env var
    assert values["database_url"] == "x"


def test_a_list_setting_from_a_file_is_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hosts = ["api.example.com", "*.internal"]
    path = _secret_file(tmp_path, json.dumps(hosts) + "\n")
    monkeypatch.setenv("CHURNOPS_SERVE_TRUSTED_HOSTS_FILE", str(path))
    assert Settings().serve_trusted_hosts == hosts


@pytest.mark.parametrize(
    ("direct", "file_variable"),
    [
        ("CHURNOPS_DATABASE_URL", "CHURNOPS_DATABASE_URL_FILE"),
        ("CHURNOPS_TRACKING_URI", "CHURNOPS_TRACKING_URI_FILE"),
        ("MLFLOW_TRACKING_URI", "CHURNOPS_TRACKING_URI_FILE"),  # the alias counts too
    ],
)
def test_a_variable_and_its_file_variant_with_different_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, direct: str, file_variable: str
) -> None:
    """Two sources of truth for one secret: refused, naming both, quoting neither value."""
    monkeypatch.setenv(direct, "sqlite:///direct-value.db")
    monkeypatch.setenv(file_variable, str(_secret_file(tmp_path, SECRET)))
    with pytest.raises(ConfigError) as caught:
        Settings()
    message = caught.value.message
    assert direct in message
    assert file_variable in message
    assert "direct-value" not in message
    assert "s3cr3t" not in message


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda tmp: tmp / "missing" / "db_url", "No such file or directory"),
        (lambda tmp: tmp, "Is a directory"),
        (lambda tmp: _secret_file(tmp, "\n"), "the file is empty"),
        (lambda tmp: _secret_file(tmp, "", "empty"), "the file is empty"),
    ],
)
def test_an_unreadable_file_is_a_config_error_naming_variable_and_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make: Any, why: str
) -> None:
    path = make(tmp_path)
    monkeypatch.setenv("CHURNOPS_DATABASE_URL_FILE", str(path))
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert caught.value.message.startswith(f"CHURNOPS_DATABASE_URL_FILE={path}: ")
    assert why in caught.value.message


def test_an_unreadable_file_by_permission(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A Secret mounted with a mode the pod's user cannot read (root can read anything)."""
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = _secret_file(tmp_path, SECRET)
    path.chmod(0)
    monkeypatch.setenv("CHURNOPS_DATABASE_URL_FILE", str(path))
    with pytest.raises(ConfigError, match="Permission denied"):
        Settings()


def test_an_empty_variable_and_bad_json_are_config_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHURNOPS_REDIS_URL_FILE", "")
    with pytest.raises(ConfigError, match="CHURNOPS_REDIS_URL_FILE is set but empty"):
        Settings()
    monkeypatch.delenv("CHURNOPS_REDIS_URL_FILE")
    monkeypatch.setenv("CHURNOPS_SERVE_TRUSTED_HOSTS_FILE", str(_secret_file(tmp_path, "a.com")))
    with pytest.raises(ConfigError, match="serve_trusted_hosts takes JSON"):
        Settings()


def test_file_wins_over_yaml_and_loses_to_arguments(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Same place as an env var: above churnops.yaml, below explicit constructor values."""
    monkeypatch.chdir(tmp_path)
    Path("churnops.yaml").write_text("database_url: sqlite:///from-yaml.db\nredis_url: redis://y\n")
    monkeypatch.setenv("CHURNOPS_DATABASE_URL_FILE", str(_secret_file(tmp_path, SECRET)))
    settings = Settings()
    assert settings.database_url == SECRET
    assert settings.redis_url == "redis://y"  # no file for it: yaml still applies
    assert Settings(database_url="sqlite:///init.db").database_url == "sqlite:///init.db"


def test_the_cli_reports_a_bad_secret_file_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A pod with a wrong mount: exit 2 and one line naming the variable, not a stack."""
    monkeypatch.setenv("CHURNOPS_DATABASE_URL_FILE", str(tmp_path / "nope"))
    result = CliRunner().invoke(app, ["keys", "list"])
    assert result.exit_code == 2, result.output
    assert "CHURNOPS_DATABASE_URL_FILE=" in result.output
    assert "Traceback" not in result.output


def test_a_secret_from_a_file_is_masked_when_settings_are_printed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHURNOPS_DATABASE_URL_FILE", str(_secret_file(tmp_path, SECRET)))
    assert "s3cr3t-pw" not in repr(Settings())


def test_the_same_value_twice_is_one_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A churnops process passes its resolved settings to its children (the dashboard
    server gets CHURNOPS_DATABASE_URL and MLFLOW_TRACKING_URI); with the *_FILE variables
    inherited too, the child must start, not refuse its own parent's values."""
    from churnops.dashboard.launch import environment

    tracking = "postgresql+psycopg://mlflow:pw@db.internal:5432/mlflow"
    monkeypatch.setenv("CHURNOPS_DATABASE_URL_FILE", str(_secret_file(tmp_path, SECRET, "db")))
    monkeypatch.setenv("CHURNOPS_TRACKING_URI_FILE", str(_secret_file(tmp_path, tracking, "t")))
    child_env = environment(Settings(), no_auth=False)
    assert child_env["CHURNOPS_DATABASE_URL"] == SECRET
    for name, value in child_env.items():  # become the child process
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.database_url == SECRET
    assert child.tracking_uri == tracking
