"""The demo's last step: a fresh local demo key, a ready curl example, then serve."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from churnops.config import Settings

DEMO_KEY_NAME = "demo"


def demo_key_and_curl(settings: Settings) -> dict[str, Any]:
    """Replace the local demo key and return it with a curl example for the champion."""
    from churnops.errors import ConfigError
    from churnops.scoring import Predictor
    from churnops.serving.auth import create_key, revoke_key

    with contextlib.suppress(ConfigError):  # first run: no demo key yet
        revoke_key(settings, DEMO_KEY_NAME)
    key = create_key(settings, DEMO_KEY_NAME, "admin")["key"]
    example = Predictor.from_registry(settings).example()
    url = f"http://{settings.serve_host}:{settings.serve_port}"
    curl = (
        f"curl -s -X POST '{url}/v1/predict?explain=true' -H 'Authorization: Bearer {key}' "
        f"-H 'Content-Type: application/json' -d '{json.dumps(example)}'"
    )
    return {"key": key, "url": url, "curl": curl, "docs": f"{url}/docs"}


def serve_demo(settings: Settings, say: Callable[[str], None] = print) -> None:
    """Print the demo key and curl example, then serve on 127.0.0.1 until Ctrl-C."""
    from churnops.serving.serve import run_server

    info = demo_key_and_curl(settings)
    say(f"Serving the champion at {info['url']} (docs: {info['docs']}); Ctrl-C stops.")
    say(f"Demo API key (admin, local only): {info['key']}")
    say(f"Try it:\n  {info['curl']}")
    run_server(settings)
