"""Serving fixtures: one loaded champion per session, an app + keys per test."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from churnops.config import Settings
from churnops.scoring import Predictor
from churnops.serving import create_app
from churnops.serving.auth import create_key
from tests.conftest import home_tracking_uri


@pytest.fixture(scope="session")
def champion(trained_home: Path) -> Predictor:
    """The registered champion v1 of the session's trained home, loaded once."""
    return Predictor.from_registry(
        Settings(home=trained_home, tracking_uri=home_tracking_uri(trained_home))
    )


@pytest.fixture(scope="session")
def challenger(champion: Predictor) -> Predictor:
    """A second 'version' (same model, another label) to tell variants apart."""
    return dataclasses.replace(champion, version="2")


@pytest.fixture
def serving_settings(trained_home: Path, tmp_path: Path) -> Settings:
    """Settings on the trained home with a private operational store."""
    return Settings(
        home=trained_home,
        tracking_uri=home_tracking_uri(trained_home),
        database_url=f"sqlite:///{tmp_path / 'ops.db'}",
        serve_access_log=False,
        serve_key_cache_seconds=0.0,
    )


@dataclasses.dataclass
class Api:
    """A test client with a scorer and an admin key."""

    client: TestClient
    settings: Settings
    scorer: str
    admin: str

    def post(self, path: str, body: Any = None, key: str | None = "scorer", **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        if key:
            headers["Authorization"] = f"Bearer {getattr(self, key, key)}"
        return self.client.post(path, json=body, headers=headers, **kw)

    def get(self, path: str, key: str | None = "scorer") -> Any:
        headers = {"Authorization": f"Bearer {getattr(self, key, key)}"} if key else {}
        return self.client.get(path, headers=headers)


@pytest.fixture
def make_api(serving_settings: Settings, champion: Predictor) -> Iterator[Callable[..., Api]]:
    """Build an app (champion preloaded unless a loader is given) and enter its lifespan."""
    stack: list[TestClient] = []

    def build(loader: Any = None, **overrides: Any) -> Api:
        settings = serving_settings.model_copy(update=overrides)
        scorer = create_key(settings, f"scorer-{len(stack)}-{time.time_ns()}", "scorer")["key"]
        admin = create_key(settings, f"admin-{len(stack)}-{time.time_ns()}", "admin")["key"]
        app = create_app(settings, predictor=None if loader else champion, loader=loader)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        stack.append(client)
        return Api(client, settings, scorer, admin)

    yield build
    for client in stack:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """An app serving the session champion with default limits."""
    return make_api()
