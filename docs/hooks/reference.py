"""MkDocs hook: the reference pages that are generated from the code at build time.

Two markers are replaced in a page's Markdown, so these pages never go stale:

- ``<!-- churnops:cli -->``: every ``churnops`` command with its arguments and options, read
  from the Typer app (``churnops.cli.app``). mkdocs-click cannot read it: Typer 0.29 vendors
  its own copy of Click, whose parameters are not ``click.Option`` instances, so mkdocs-click
  renders every command without its options. The help records are Typer's own (what
  ``--help`` prints), laid out as Markdown tables.
- ``<!-- churnops:settings -->``: every field of ``churnops.config.Settings`` (name, type,
  default, environment variable, description), in the groups ``config.setting_groups``
  declares (the same ``churnops init`` writes).

Loaded by ``hooks:`` in mkdocs.yml; nothing in ``src/`` depends on it.
"""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any

CLI_MARKER = "<!-- churnops:cli -->"
SETTINGS_MARKER = "<!-- churnops:settings -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each reference marker with Markdown generated from the code."""
    renderers = {
        CLI_MARKER: cli_reference,
        SETTINGS_MARKER: lambda: settings_reference(nav_titles(config["nav"])),
    }
    # Only a marker alone on its line: a page may mention the markers in code.
    for marker, render in renderers.items():
        pattern = re.compile(rf"^{re.escape(marker)}[ \t]*$", re.MULTILINE)
        if pattern.search(markdown):
            text = render()
            markdown = pattern.sub(lambda _, text=text: text, markdown)
    return markdown


# --- the command line -----------------------------------------------------------------------


def cli_reference() -> str:
    """Return the Markdown of every command, depth-first in the order ``--help`` lists them."""
    import typer.main

    from churnops.cli import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="churnops")
    lines: list[str] = []
    _command_docs(root, ctx, lines, depth=2)
    return "\n".join(lines)


def _command_docs(command: Any, ctx: Any, lines: list[str], depth: int) -> None:
    path = ctx.command_path
    if depth > 2:
        lines += [f"{'#' * depth} `{path}`", ""]
    if command.help:
        lines += [_help_text(command.help), ""]
    lines += ["```text", f"{path} {' '.join(command.collect_usage_pieces(ctx))}", "```", ""]
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        kind = "argument" if param.param_type_name == "argument" else "option"
        rows.append((names, kind, help_text))
    if rows:
        lines += ["| name | kind | meaning |", "|---|---|---|"]
        lines += [f"| `{_cell(n)}` | {k} | {_cell(h)} |" for n, k, h in rows]
        lines.append("")
    names = command.list_commands(ctx) if hasattr(command, "list_commands") else []
    if names:
        subs = [(n, command.get_command(ctx, n)) for n in names]
        subs = [(n, c) for n, c in subs if c is not None and not c.hidden]
        lines += ["| command | what it does |", "|---|---|"]
        for name, sub in subs:
            anchor = _anchor(f"{path} {name}")
            lines.append(f"| [`{name}`](#{anchor}) | {_cell(sub.get_short_help_str(limit=200))} |")
        lines.append("")
        for name, sub in subs:
            sub_ctx = sub.context_class(sub, info_name=name, parent=ctx)
            _command_docs(sub, sub_ctx, lines, depth=min(depth + 1, 4))


def _help_text(text: str) -> str:
    # Click's "\b" marks a paragraph that must not be rewrapped; Markdown needs no marker.
    return "\n".join(line for line in text.strip().splitlines() if line.strip() != "\b")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "&#124;")


def _anchor(title: str) -> str:
    # What Python-Markdown's toc slugify makes of a heading like "`churnops data demo`".
    return re.sub(r"[^\w\s-]", "", title).strip().lower().replace(" ", "-")


# --- settings -------------------------------------------------------------------------------


def settings_reference(titles: dict[str, str] | None = None) -> str:
    """Return one table per documented group of settings (``churnops.config.setting_groups``).

    The groups are the ones ``churnops init`` writes into ``churnops.yaml``, so the file and
    this page read the same way; ``titles`` maps a docs page to its title in the nav.
    """
    from churnops.config import Settings, setting_groups

    titles = titles or {}
    lines: list[str] = []
    for group in setting_groups():
        lines += [f"## {group.title}", ""]
        note = group.note
        if group.page:
            title = titles.get(group.page, group.page)
            link = f"[{title}](../{group.page})"
            note = f"{note} More in {link}." if note else f"More in {link}."
        if note:
            lines += [note, ""]
        lines += ["| setting | type | default | environment variable | meaning |"]
        lines += ["|---|---|---|---|---|"]
        for name in group.names:
            field = Settings.model_fields[name]
            cells = [
                f"`{name}`",
                _cell(_type_name(field.annotation)),
                _default(field.default),
                " or ".join(f"`{env}`" for env in _env_vars(name, field)),
                _cell(_description(field)),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def nav_titles(nav: Any) -> dict[str, str]:
    """Return ``{page file: title}`` from mkdocs.yml's ``nav``."""
    titles: dict[str, str] = {}
    items = nav if isinstance(nav, list) else [nav]
    for item in items:
        if isinstance(item, dict):
            for title, value in item.items():
                if isinstance(value, str):
                    titles[value] = title
                else:
                    titles.update(nav_titles(value))
    return titles


def _env_vars(name: str, field: Any) -> list[str]:
    alias = field.validation_alias
    if alias is None:
        return [f"CHURNOPS_{name.upper()}"]
    if isinstance(alias, str):
        return [alias]
    return [str(choice) for choice in getattr(alias, "choices", [alias])]


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " or ".join(json.dumps(v) for v in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation)).replace(
            "NoneType", "none"
        )
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', origin)}[{args}]"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def _default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value)}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{value}`"


def _description(field: Any) -> str:
    text = field.description or ""
    bounds = []
    for meta in field.metadata:
        for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            bound = getattr(meta, attr, None)
            if bound is not None:
                bounds.append(f"{sign} {bound}")
    if bounds:
        text = f"{text} ({', '.join(bounds)})" if text else f"({', '.join(bounds)})"
    return text
