"""MkDocs hook: the reference pages that are generated from the code at build time.

Two markers are replaced in a page's Markdown, so these pages never go stale:

- ``<!-- churnops:cli -->``: every ``churnops`` command with its arguments and options, read
  from the Typer app (``churnops.cli.app``). mkdocs-click cannot read it: Typer 0.29 vendors
  its own copy of Click, whose parameters are not ``click.Option`` instances, so mkdocs-click
  renders every command without its options. The help records are Typer's own (what
  ``--help`` prints), laid out as Markdown tables.
- ``<!-- churnops:settings -->``: every field of ``churnops.config.Settings`` (name, type,
  default, environment variable, description), grouped by area.

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
    # Only a marker alone on its line: a page may mention the markers in code.
    for marker, render in ((CLI_MARKER, cli_reference), (SETTINGS_MARKER, settings_reference)):
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

# A field belongs to the first group whose prefix it has, else to the group named here, else
# to the group of the field declared before it (config.py declares related fields together).
_PREFIX_GROUPS = [
    ("batch_test_", "Testing hooks"),
    ("serve_", "Serving"),
    ("dashboard_", "Dashboard"),
    ("pipeline_", "Pipeline"),
    ("batch_", "Batch scoring"),
]
_NAME_GROUPS = {
    "home": "Where state lives",
    "seed": "Training",
    "min_delta": "Registry",
    "psi_warn": "Monitoring",
    "max_rejected_share": "Batch scoring",
    "reasons_top": "Batch scoring",
    "score_segment_columns": "Batch scoring",
    "spark_master": "Batch scoring",
}
_GROUP_ORDER = [
    "Where state lives",
    "Training",
    "Registry",
    "Serving",
    "Dashboard",
    "Batch scoring",
    "Monitoring",
    "Pipeline",
    "Testing hooks",
]
_GROUP_NOTES = {
    "Where state lives": "With none of these set, everything lives under `./.churnops/`.",
    "Serving": "`churnops serve` options override these; see [Serving](../serving.md).",
    "Batch scoring": "See [Batch scoring](../batch.md).",
    "Monitoring": "See [Monitoring](../monitoring.md). Settings that default to none are "
    "derived from the data and the champion; set them to override.",
    "Pipeline": "What `churnops pipeline run` and the Dagster definitions read.",
    "Testing hooks": "For the crash-safety tests; leave them alone in production.",
}
# Said here until the field carries a description in config.py (which then wins).
_DESCRIPTIONS = {
    "redis_url": "Redis shared by every API worker and replica for rate-limit buckets.",
    "model_name": "The registered model (MLflow) every command trains into and reads.",
    "experiment_name": "The MLflow experiment training runs are logged to.",
    "seed": "Seed of the holdout split, the folds and the tuner.",
    "holdout": "Share of rows kept aside for the holdout evaluation.",
    "cv_folds": "Cross-validation folds used while tuning.",
    "families": "Model families to tune: logistic, lightgbm, xgboost.",
    "metric": "Primary metric: selects the family and gates promotion.",
    "threshold_strategy": "How the decision threshold is chosen: best F1, or expected profit.",
    "offer_cost": "Profit threshold and campaign planner: cost of one retention offer.",
    "customer_value": "Profit threshold and campaign planner: value of a kept customer.",
    "customer_value_column": "Column holding each customer's value (instead of one constant).",
    "acceptance_rate": "Share of contacted churners an offer keeps.",
    "min_delta": "Promotion gate: the challenger must beat the champion by this much.",
    "serve_host": "Bind address of `churnops serve`.",
    "serve_port": "Port of `churnops serve`.",
    "serve_workers": "Uvicorn worker processes.",
    "serve_audit": "Write an audit row for every `/v1/` call.",
    "serve_access_log": "JSON access-log lines on stderr.",
    "serve_ssl_certfile": "TLS certificate (HTTPS on the same port).",
    "serve_ssl_keyfile": "TLS private key.",
    "dashboard_host": "Bind address of `churnops dashboard`.",
    "dashboard_port": "Port of `churnops dashboard`.",
    "pipeline_target": "Label column when there is no champion contract to take it from.",
    "pipeline_id": "Id column when there is no champion contract to take it from.",
}


def settings_reference() -> str:
    """Return one table per group of ``Settings.model_fields``."""
    from churnops.config import Settings

    groups: dict[str, list[str]] = {}
    group = _GROUP_ORDER[0]
    for name in Settings.model_fields:
        group = _group_of(name, group)
        groups.setdefault(group, []).append(name)
    order = [g for g in _GROUP_ORDER if g in groups] + [g for g in groups if g not in _GROUP_ORDER]
    lines: list[str] = []
    for title in order:
        lines += [f"## {title}", ""]
        if title in _GROUP_NOTES:
            lines += [_GROUP_NOTES[title], ""]
        lines += ["| setting | type | default | environment variable | meaning |"]
        lines += ["|---|---|---|---|---|"]
        for name in groups[title]:
            field = Settings.model_fields[name]
            cells = [
                f"`{name}`",
                _cell(_type_name(field.annotation)),
                _default(field.default),
                " or ".join(f"`{env}`" for env in _env_vars(name, field)),
                _cell(_description(name, field)),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _group_of(name: str, previous: str) -> str:
    for prefix, group in _PREFIX_GROUPS:
        if name.startswith(prefix):
            return group
    return _NAME_GROUPS.get(name, previous)


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


def _description(name: str, field: Any) -> str:
    text = field.description or _DESCRIPTIONS.get(name, "")
    bounds = []
    for meta in field.metadata:
        for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            bound = getattr(meta, attr, None)
            if bound is not None:
                bounds.append(f"{sign} {bound}")
    if bounds:
        text = f"{text} ({', '.join(bounds)})" if text else f"({', '.join(bounds)})"
    return text
