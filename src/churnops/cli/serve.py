"""``churnops serve`` and ``churnops keys create|list|revoke``."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from churnops.cli.output import JsonOption, console, handle_errors, out, print_json

keys_app = typer.Typer(help="Manage API keys of the scoring service.", no_args_is_help=True)


@handle_errors
def serve_command(
    host: str | None = typer.Option(None, "--host", help="Bind address [127.0.0.1]."),
    port: int | None = typer.Option(None, "--port", help="Port [8000]."),
    workers: int | None = typer.Option(None, "--workers", help="Uvicorn worker processes [1]."),
    insecure_no_auth: bool = typer.Option(
        False, "--insecure-no-auth", help="Accept requests without an API key (prints a warning)."
    ),
    ssl_certfile: Path | None = typer.Option(None, "--ssl-certfile", help="TLS certificate."),
    ssl_keyfile: Path | None = typer.Option(None, "--ssl-keyfile", help="TLS private key."),
    poll_seconds: float | None = typer.Option(
        None, "--poll-seconds", help="Reload when the champion alias moves (0 = off)."
    ),
    canary: float | None = typer.Option(
        None, "--canary", help="Share of customers (by id hash) served by the challenger."
    ),
    shadow: bool | None = typer.Option(
        None, "--shadow/--no-shadow", help="Also score the challenger and log it."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Serve the champion over HTTP (FastAPI + uvicorn) until interrupted."""
    overrides = {
        "CHURNOPS_SERVE_HOST": host,
        "CHURNOPS_SERVE_PORT": port,
        "CHURNOPS_SERVE_WORKERS": workers,
        "CHURNOPS_SERVE_SSL_CERTFILE": ssl_certfile,
        "CHURNOPS_SERVE_SSL_KEYFILE": ssl_keyfile,
        "CHURNOPS_SERVE_POLL_SECONDS": poll_seconds,
        "CHURNOPS_SERVE_CANARY_SHARE": canary,
        "CHURNOPS_SERVE_SHADOW": None if shadow is None else str(shadow).lower(),
        "CHURNOPS_SERVE_NO_AUTH": "true" if insecure_no_auth else None,
    }
    # Worker processes read the same settings from the environment.
    for key, value in overrides.items():
        if value is not None:
            os.environ[key] = str(value)
    from churnops.config import get_settings
    from churnops.serving.serve import run_server

    get_settings.cache_clear()
    run_server(get_settings(), as_json=as_json, announce=print_json if as_json else None)


@keys_app.command("create")
@handle_errors
def keys_create(
    name: str = typer.Option(..., "--name", help="Who or what uses the key."),
    role: str = typer.Option(
        "scorer", "--role", help="scorer (score), analyst (dashboard, reports) or admin."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from churnops.config import get_settings
    from churnops.serving.auth import create_key

    created = create_key(get_settings(), name, role)
    if as_json:
        print_json(created)
        return
    out.print(created["key"], highlight=False, soft_wrap=True)
    console.print(
        f"Key {name!r} ({role}) created. Store it now: it cannot be shown again.", highlight=False
    )


@keys_app.command("list")
@handle_errors
def keys_list(
    all_keys: bool = typer.Option(False, "--all", help="Include revoked keys."),
    as_json: bool = JsonOption,
) -> None:
    """List API keys (names, roles, prefixes; never the keys)."""
    from churnops.config import get_settings
    from churnops.serving.auth import list_keys

    keys = list_keys(get_settings(), include_revoked=all_keys)
    if as_json:
        print_json({"keys": keys})
        return
    if not keys:
        out.print("No API keys. Create one with `churnops keys create --name NAME`.")
    for k in keys:
        state = "active" if k["active"] else f"revoked {k['revoked_at']:%Y-%m-%d %H:%M}"
        out.print(
            f"{k['name']:<24} {k['role']:<7} {k['prefix']}…  "
            f"created {k['created_at']:%Y-%m-%d %H:%M}  {state}",
            highlight=False,
        )


@keys_app.command("revoke")
@handle_errors
def keys_revoke(
    name: str = typer.Argument(..., help="Name of the key to revoke."),
    as_json: bool = JsonOption,
) -> None:
    """Revoke a key; running servers refuse it within serve_key_cache_seconds."""
    from churnops.config import get_settings
    from churnops.serving.auth import revoke_key

    result = revoke_key(get_settings(), name)
    if as_json:
        print_json(result)
        return
    out.print(f"Key {name!r} revoked.")
