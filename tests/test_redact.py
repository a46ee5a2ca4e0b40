"""URL passwords never leave the process: messages, errors, logs, settings, API answers."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from churnops.config import Settings
from churnops.errors import RegistryError, ReloadError
from churnops.redact import redact, redact_data
from churnops.serving.logs import JsonFormatter
from tests.conftest import home_tracking_uri

SECRET = "S3cretPW"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mysql+pymysql://svc:S3cretPW@host/x", "mysql+pymysql://svc:***@host/x"),
        ("at 'postgresql://u:S3cretPW@h:5432/db'.", "at 'postgresql://u:***@h:5432/db'."),
        ("redis://:S3cretPW@h:6379/0", "redis://:***@h:6379/0"),
        ("http://u:S3cret@PW@h/api", "http://u:***@h/api"),  # "@" inside the password
        ("a://u:S3cretPW@h b://v:S3cretPW@i", "a://u:***@h b://v:***@i"),
        ("https://user@host/x and http://host:8080/p@x", None),  # no password: unchanged
        ("sqlite:////tmp/home/mlflow.db", None),
        ("postgresql://u:***@h/db", None),  # already redacted
    ],
)
def test_redact_masks_every_url_password(text: str, expected: str | None) -> None:
    """Only the password is masked; user, host, path and text around it stay readable."""
    assert redact(text) == (expected or text)


def test_redact_data_walks_dicts_and_lists() -> None:
    """Nested details (API bodies, error details) are redacted string by string."""
    data = {"url": "pg://u:S3cretPW@h", "n": 3, "tries": ["pg://u:S3cretPW@h", None]}
    assert redact_data(data) == {"url": "pg://u:***@h", "n": 3, "tries": ["pg://u:***@h", None]}


def test_errors_are_redacted_when_made() -> None:
    """Message, str() and details of every churnops error carry no password."""
    exc = RegistryError(
        f"Cannot reach http://svc:{SECRET}@mlflow:5000", {"uri": f"http://svc:{SECRET}@m"}
    )
    assert SECRET not in f"{exc} {exc.message} {exc.to_dict()} {exc.args}"
    assert "http://svc:***@mlflow:5000" in exc.message


def test_settings_repr_masks_passwords() -> None:
    """Settings printed in a traceback or a debug log keep their URLs' passwords."""
    settings = Settings(
        database_url=f"postgresql+psycopg://svc:{SECRET}@db/x",
        tracking_uri=f"http://svc:{SECRET}@mlflow:5000",
        redis_url=f"redis://:{SECRET}@redis:6379/0",
    )
    assert SECRET not in repr(settings) + str(settings)
    assert settings.database_url == f"postgresql+psycopg://svc:{SECRET}@db/x"  # still usable


def test_json_log_lines_are_redacted() -> None:
    """Message arguments, extras and tracebacks of a log record are all masked."""
    try:
        raise ValueError(f"driver said postgresql://svc:{SECRET}@db/x")
    except ValueError:
        record = logging.LogRecord(
            "churnops.test",
            logging.ERROR,
            __file__,
            1,
            "cannot open %s",
            (f"mysql+pymysql://svc:{SECRET}@host/x",),
            sys.exc_info(),
        )
    record.url = f"redis://:{SECRET}@redis:6379/0"
    line = JsonFormatter().format(record)
    assert SECRET not in line
    assert "mysql+pymysql://svc:***@host/x" in line


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Capture the ``churnops`` loggers through the server's JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("churnops")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


@pytest.mark.integration
def test_failed_reload_answers_and_logs_without_the_password(
    trained_home: Path, tmp_path: Path, json_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry URL with a password in a reload's 409 reason and in its log line: masked."""
    from fastapi.testclient import TestClient

    from churnops.scoring import Predictor
    from churnops.serving import create_app

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    champion = Predictor.from_registry(
        Settings(home=trained_home, tracking_uri=home_tracking_uri(trained_home))
    )
    settings = Settings(
        home=tmp_path / "home",
        tracking_uri=f"http://svc:{SECRET}@127.0.0.1:1/",
        database_url=f"sqlite:///{tmp_path / 'ops.db'}",
        serve_audit=False,
        serve_access_log=False,
    )
    with TestClient(create_app(settings, predictor=champion, no_auth=True)) as client:
        answer = client.post("/v1/admin/reload")
    assert answer.status_code == ReloadError.http_status, answer.text
    assert "svc:***@" in answer.json()["reason"]
    assert SECRET not in answer.text
    assert "reload failed" in json_log.getvalue()
    assert SECRET not in json_log.getvalue()
