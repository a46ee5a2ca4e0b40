"""AWS Lambda entry point: the same FastAPI app behind API Gateway, through Mangum.

Handler: ``churnops.serving.aws_lambda.handler`` (needs the ``lambda`` extra, Mangum).
It is built on first access, which the Lambda runtime makes while it initialises the
sandbox (the cold start), so the model, the app and its lifespan are ready before the
first event and are reused by every invocation the sandbox serves.

Where the model comes from:

- **baked**: the image holds a verified copy under ``$LAMBDA_TASK_ROOT/model`` (written
  before ``docker build`` by ``python -m churnops.serving.aws_lambda bake deploy/lambda/model``).
  The registry is never read: the cold start costs no network and no MLflow, and the
  function serves exactly the version it was built with (its SHA-256 manifest, and HMAC
  when ``CHURNOPS_MODEL_SIGNING_KEY`` is set, checked at every cold start).
- **registry**: no baked copy, so the champion is loaded from the registry at cold start,
  as ``churnops serve`` does; a sandbox keeps the version it started with.

Why the app's lifespan is run here and not by Mangum: Mangum runs an ASGI lifespan's
startup *and shutdown* around every invocation, which would read every API key and start
and stop the app's background work per request. Here it runs once per sandbox (the
ASGI lifespan protocol, so nothing depends on how the app implements it).

What differs from a server, because a sandbox is frozen between invocations (nothing
runs: no event loop, no thread, no child process) and reclaimed without notice:

- The audit writer process is refused (``serve_audit`` defaults to off, and an explicit
  ``CHURNOPS_SERVE_AUDIT=true`` is a ConfigError): rows it holds when a sandbox is
  reclaimed would be lost without being counted. The JSON access log lines (key name,
  route, status, latency, request id) go to CloudWatch Logs as each request ends.
- Alias polling is refused for the same reason; a new champion reaches the function
  through new sandboxes (redeploy, or bake a new image).
- API keys are re-read *before* an invocation when the cache is older than
  ``serve_key_cache_seconds`` by the wall clock, so a revocation made while a sandbox
  was frozen applies to its next request (the server refreshes in the background and
  would let one stale request through after a long freeze).
- ``CHURNOPS_HOME`` defaults to ``/tmp/churnops``, the one writable place (the
  last-known-good copy of a registry load goes there). API keys need a shared store:
  set ``CHURNOPS_DATABASE_URL``.
- The churnops request id is the Lambda request id (``context.aws_request_id``) unless the
  client sent ``X-Request-ID``, so app log lines match the invocation's CloudWatch lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops.config import Settings
from churnops.errors import ChurnopsError, ConfigError, ModelNotFoundError
from churnops.scoring import Predictor

log = logging.getLogger("churnops.serving")

LAMBDA_HOME = Path("/tmp/churnops")  # Lambda's only writable path is /tmp
BAKED_FOLDER = "model"  # under $LAMBDA_TASK_ROOT
BAKED_SOURCE = "baked"
CHAMPION = "champion"


def lambda_settings(settings: Settings | None = None) -> Settings:
    """Return ``settings`` (default: from the environment) with the Lambda defaults.

    Only settings the deployment left unset are changed; the two that cannot work in a
    sandbox that is frozen between invocations are refused with a ConfigError that says
    why, rather than half-working.
    """
    settings = settings if settings is not None else Settings()
    given = settings.model_fields_set
    updates: dict[str, Any] = {}
    if "home" not in given:
        updates["home"] = LAMBDA_HOME
    if "serve_audit" not in given:
        updates["serve_audit"] = False
    settings = settings.model_copy(update=updates)
    if settings.serve_audit:
        raise ConfigError(
            "CHURNOPS_SERVE_AUDIT=true cannot work on AWS Lambda: the audit writer process is "
            "frozen between invocations and its buffered rows are lost, uncounted, when the "
            "sandbox is reclaimed. Leave it unset (the JSON access log goes to CloudWatch) or "
            "serve with `churnops serve` (container, Kubernetes) to keep the audit table."
        )
    if settings.serve_poll_seconds > 0:
        raise ConfigError(
            "CHURNOPS_SERVE_POLL_SECONDS cannot work on AWS Lambda: nothing runs between "
            "invocations. A new champion reaches the function through new sandboxes "
            "(redeploy it, or bake a new image)."
        )
    return settings


def baked_model_dir() -> Path:
    """Return where an image keeps its baked model: ``$LAMBDA_TASK_ROOT/model``."""
    return Path(os.environ.get("LAMBDA_TASK_ROOT", ".")) / BAKED_FOLDER


def is_baked(settings: Settings, folder: Path) -> bool:
    """Return True when ``folder`` holds a baked model copy (its pointer file)."""
    from churnops.registry.local import POINTER_FILE, last_good_dir

    return (last_good_dir(settings.model_copy(update={"home": folder})) / POINTER_FILE).is_file()


def bake(settings: Settings, dest: Path, alias: str = CHAMPION) -> dict[str, Any]:
    """Copy a registered version's verified files into ``dest`` for a Lambda image.

    The copy is the last-known-good layout (files, description, SHA-256 manifest and
    HMAC), so the cold start verifies it exactly as a registry load would be verified.
    """
    from churnops import registry

    loaded = registry.load_model(settings, alias=alias)
    copy = registry.save_last_good(settings.model_copy(update={"home": dest}), loaded)
    return {
        "model": loaded.version.name,
        "version": loaded.version.version,
        "alias": alias,
        "folder": str(copy),
    }


def load_baked(settings: Settings, folder: Path) -> Predictor:
    """Load and verify the baked copy under ``folder`` (the signing key from ``settings``)."""
    from churnops import registry

    loaded = registry.load_last_good(settings.model_copy(update={"home": folder}))
    return Predictor.from_loaded(loaded, BAKED_SOURCE)


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object the handler reads (for local runs)."""

    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    function_name: str = "churnops-api"
    memory_limit_in_mb: int = 1024

    def get_remaining_time_in_millis(self) -> int:
        """Mirror the real context's method (Mangum does not call it; tools may)."""
        return 30_000


class LambdaHandler:
    """Mangum over :func:`churnops.serving.create_app`, with the lifespan run once."""

    def __init__(self, settings: Settings, model_dir: Path | None = None) -> None:
        """Build the app and run its startup: the cold start.

        Args:
            settings: Lambda-ready settings (see :func:`lambda_settings`).
            model_dir: a baked model folder; None loads the champion from the registry.
        """
        from churnops.extras import require

        require("mangum", "lambda")
        from mangum import Mangum
        from mangum.protocols.lifespan import LifespanCycle

        from churnops.serving import create_app
        from churnops.serving.serve import load_for_serving

        self.settings = settings
        if model_dir is not None:
            predictor = load_baked(settings, model_dir)

            def baked_loader(alias: str) -> Predictor:
                # Reload (POST /v1/admin/reload) re-serves the baked version; nothing else
                # is in the image (no challenger for canary or shadow).
                if alias != CHAMPION:
                    raise ModelNotFoundError(f"The image has no {alias} baked in.")
                return predictor

            self.app = create_app(settings, predictor=predictor, loader=baked_loader)
        else:
            predictor, warnings = load_for_serving(settings)
            for warning in warnings:
                log.warning(warning)
            self.app = create_app(settings, predictor=predictor)
        self.predictor = predictor
        self.loop = _event_loop()  # the loop Mangum runs each invocation on
        self._lifespan = contextlib.ExitStack()
        cycle = LifespanCycle(self.app, "on")
        self._lifespan.enter_context(cycle)  # startup now; shutdown in close()
        self._state = cycle.lifespan_state
        self._keys_read_at = time.time()  # the lifespan read the keys
        self.mangum = Mangum(self._with_state, lifespan="off")
        log.info(
            "lambda handler ready",
            extra={
                "model": {"name": predictor.name, "version": predictor.version},
                "source": predictor.source,
            },
        )

    async def _with_state(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Give each request a copy of the lifespan state, as uvicorn does."""
        scope["state"] = dict(self._state)
        await self.app(scope, receive, send)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Serve one API Gateway (HTTP API v2 or REST v1) or ALB event."""
        self._refresh_stale_keys()
        request_id = getattr(context, "aws_request_id", None)
        headers = event.get("headers")
        if (
            request_id
            and isinstance(headers, dict)
            and not any(name.lower() == "x-request-id" for name in headers)
        ):
            event = {**event, "headers": {**headers, "x-request-id": request_id}}
        return self.mangum(event, context)  # type: ignore[no-any-return]

    def _refresh_stale_keys(self) -> None:
        """Re-read the API keys first when the cache is older than its period, by wall clock.

        A frozen sandbox runs no background refresh, and the key cache measures age on the
        monotonic clock, which need not count the time frozen; without this, a key revoked
        during a long freeze would pass once more.
        """
        keys = self.app.state.services.keys
        if keys is None or keys.ttl <= 0 or time.time() - self._keys_read_at <= keys.ttl:
            return
        try:
            keys.refresh()
        except Exception as exc:  # the store unreachable: the keys in memory stay in force
            log.warning("API keys: cannot read the store (%s)", type(exc).__name__)
        self._keys_read_at = time.time()

    def close(self) -> None:
        """Run the app's shutdown (tests and local runs; Lambda reclaims sandboxes itself)."""
        self._lifespan.close()


def build_handler(settings: Settings | None = None, model_dir: Path | None = None) -> LambdaHandler:
    """Return a handler for ``settings`` (Lambda defaults applied) and a baked or registry model.

    ``model_dir`` None means the image's baked folder when it holds a copy, else the registry.
    """
    settings = lambda_settings(settings)
    if model_dir is None and is_baked(settings, baked_model_dir()):
        model_dir = baked_model_dir()
    return LambdaHandler(settings, model_dir)


def _event_loop() -> asyncio.AbstractEventLoop:
    """Return the thread's event loop (Mangum uses it), setting a new one if none or closed."""
    with contextlib.suppress(RuntimeError):
        loop = asyncio.get_event_loop()
        if not loop.is_closed():
            return loop
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


_handler: LambdaHandler | None = None


def __getattr__(name: str) -> Any:
    """Build ``handler`` on first access: the Lambda runtime takes it during the init phase.

    Lazy so that importing the module (``bake``, tests, tools) builds nothing.
    """
    global _handler
    if name != "handler":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _handler is None:
        from churnops.serving.logs import configure_logging

        configure_logging()
        _handler = build_handler()
    return _handler


def main(argv: list[str] | None = None) -> int:
    """``python -m churnops.serving.aws_lambda bake DEST``: bake a model before docker build."""
    import json

    parser = argparse.ArgumentParser(
        prog="python -m churnops.serving.aws_lambda",
        description="Bake a registered model into a folder the Lambda image copies.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    baking = commands.add_parser("bake", help="Copy a verified registered version into DEST.")
    baking.add_argument("dest", type=Path, help="e.g. deploy/lambda/model")
    baking.add_argument("--alias", default=CHAMPION, help="champion (default) or challenger")
    args = parser.parse_args(argv)
    try:
        result = bake(Settings(), args.dest, args.alias)
    except ChurnopsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
