"""``churnops dashboard``: the retention team's web app (Streamlit), on loopback by default."""

from __future__ import annotations

import typer

from churnops.cli.output import JsonOption, console, handle_errors, out, print_json


@handle_errors
def dashboard_command(
    host: str | None = typer.Option(None, "--host", help="Bind address [127.0.0.1]."),
    port: int | None = typer.Option(None, "--port", help="Port [8501]."),
    insecure_no_auth: bool = typer.Option(
        False,
        "--insecure-no-auth",
        help="No sign-in, read-only (loopback only; prints a warning).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Serve the dashboard (at risk, customer, campaign, model, monitoring) until Ctrl-C."""
    from churnops.config import get_settings
    from churnops.dashboard.launch import check_bind, start, wait_ready

    settings = get_settings()
    host = host or settings.dashboard_host
    port = settings.dashboard_port if port is None else port
    check_bind(host, insecure_no_auth)
    url = f"http://{host}:{port}"
    process = start(settings, host, port, insecure_no_auth)
    try:
        ready = wait_ready(url, process)
        info = {"url": url, "ready": ready, "auth": not insecure_no_auth}
        if as_json:
            print_json(info)
        else:
            out.print(f"Dashboard at {url} — sign in with an analyst or admin key; Ctrl-C stops.")
        if insecure_no_auth:
            console.print(
                "[bold yellow]Warning:[/] --insecure-no-auth: anyone who can reach "
                f"{url} reads the dashboard without a key."
            )
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        code = process.wait()
    if code not in (0, -2, -15):
        raise typer.Exit(1)
