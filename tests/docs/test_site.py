"""The documentation site builds with ``mkdocs build --strict``: no broken link, no missing
page, no warning; and the generated reference pages hold what the code defines."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT, VENV_BIN

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNOPS_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    proc = subprocess.run(
        [str(VENV_BIN / "mkdocs"), "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_every_nav_page_is_built(site: Path) -> None:
    import yaml

    def pages(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, dict):
            return [p for v in nav.values() for p in pages(v)]
        if isinstance(nav, list):
            return [p for v in nav for p in pages(v)]
        return []

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    for page in pages(config["nav"]):
        built = site / ("index.html" if page == "index.md" else page[: -len(".md")] + "/index.html")
        assert built.exists(), f"{page} is in the nav but was not built"


def test_cli_reference_lists_every_command_and_option(site: Path) -> None:
    import typer.main

    from churnops.cli import app

    html = _text((site / "reference/cli/index.html").read_text())
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="churnops")

    def walk(command, ctx) -> None:  # type: ignore[no-untyped-def]
        assert ctx.command_path in html, f"`{ctx.command_path}` is missing from the CLI page"
        for param in command.get_params(ctx):
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt != "--help":
                    assert opt in html, f"{ctx.command_path} {opt} is missing from the CLI page"
        for name in getattr(command, "list_commands", lambda _: [])(ctx):
            sub = command.get_command(ctx, name)
            walk(sub, sub.context_class(sub, info_name=name, parent=ctx))

    walk(root, ctx)


def test_configuration_reference_lists_every_setting(site: Path) -> None:
    from churnops.config import Settings

    html = _text((site / "reference/configuration/index.html").read_text())
    for name in Settings.model_fields:
        assert name in html, f"setting {name} is missing from the configuration page"
        if Settings.model_fields[name].validation_alias is None:
            assert f"CHURNOPS_{name.upper()}" in html


def test_python_reference_documents_the_api(site: Path) -> None:
    html = (site / "reference/python/index.html").read_text()
    assert 'id="churnops.api.train"' in html or "churnops.api.train" in html
    assert "churnops.client.Client" in html
