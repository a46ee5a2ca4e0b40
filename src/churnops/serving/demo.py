"""The demo's last step: fresh local demo keys, a ready curl example, then serve both apps.

The API (admin key, for the curl example) and the retention dashboard (an analyst key:
read-only) are served side by side on 127.0.0.1 until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Callable
from typing import Any

from churnops.config import Settings

DEMO_KEY_NAME = "demo"
DEMO_ANALYST_KEY_NAME = "demo-analyst"


def fresh_key(settings: Settings, name: str, role: str) -> str:
    """Replace the local key called ``name`` (revoking the last demo's) and return it."""
    from churnops.errors import ConfigError
    from churnops.serving.auth import create_key, revoke_key

    with contextlib.suppress(ConfigError):  # first run: no such key yet
        revoke_key(settings, name)
    return create_key(settings, name, role)["key"]


def demo_key_and_curl(settings: Settings) -> dict[str, Any]:
    """Replace the local demo key and return it with a curl example for the champion."""
    from churnops.scoring import Predictor

    key = fresh_key(settings, DEMO_KEY_NAME, "admin")
    example = Predictor.from_registry(settings).example()
    url = f"http://{settings.serve_host}:{settings.serve_port}"
    curl = curl_command(url, key, example)
    return {"key": key, "url": url, "curl": curl, "docs": f"{url}/docs"}


def curl_command(url: str, key: str, example: dict[str, Any]) -> str:
    """Return the one-line shell command that scores ``example`` with ``key``, explained."""
    body = shlex.quote(json.dumps(example))
    return (
        f"curl -s -X POST '{url}/v1/predict?explain=true' -H 'Authorization: Bearer {key}' "
        f"-H 'Content-Type: application/json' -d {body}"
    )


def serve_demo(settings: Settings, say: Callable[[str], None] = print) -> None:
    """Print the keys and the curl example, then serve the API and the dashboard until Ctrl-C.

    ``say`` must print each line whole (no wrapping): people paste the curl line and keys.
    """
    from churnops.dashboard.launch import start, wait_ready
    from churnops.serving.serve import run_server

    info = demo_key_and_curl(settings)
    analyst = fresh_key(settings, DEMO_ANALYST_KEY_NAME, "analyst")
    dashboard_url = f"http://127.0.0.1:{settings.dashboard_port}"
    dashboard = start(settings, "127.0.0.1", settings.dashboard_port)
    try:
        ready = wait_ready(dashboard_url, dashboard)
        say(f"Serving the champion at {info['url']} (docs: {info['docs']}); Ctrl-C stops both.")
        say(f"Demo API key (admin, local only): {info['key']}")
        say(f"Try it:\n  {info['curl']}")
        if ready:
            say(f"Retention dashboard at {dashboard_url}; sign in with the demo analyst key:")
            say(f"  {analyst}")
        else:
            say(f"The dashboard did not start; try `churnops dashboard` ({dashboard_url}).")
        run_server(settings)
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=10)
