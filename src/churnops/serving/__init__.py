"""The online scoring service: FastAPI app, API keys, rate limits, audit, metrics."""

from churnops.serving.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
