"""``churnops init``: start a project from a customer table with a commented churnops.yaml.

The file documents every setting without pinning any: the settings are read from
:class:`~churnops.config.Settings` at run time (name, default, description), grouped by
:func:`~churnops.config.setting_groups`, each written as a comment ``# name: default``,
so a new setting appears here the day it is added and a default changed later still
applies. Only what this table decides is set: ``pipeline_source``, ``pipeline_target`` and
``pipeline_id``. Secrets and connection URLs are never written with a value.

Each file the command writes is one entry of a list checked before anything is written:
``--dvc`` adds ``dvc.yaml`` (:mod:`churnops.orchestration.dvc`) beside the settings file,
under the same overwrite rule.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

import typer

from churnops.cli.output import JsonOption, handle_errors, out, print_json

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from churnops.config import SettingGroup
    from churnops.data.contract import DataContract

WIDTH = 100
# What a commented-out setting looks like; no line of prose may (see _comment).
SETTING_LIKE = re.compile(r"^# [a-z][a-z0-9_]*:(?: |$)")
PIPELINE_PREFIX = "pipeline_"
DOCS_PAGE = "docs/reference/configuration.md"
SECRET_SUFFIXES = ("_url", "_uri")  # connection strings may carry a password
SEQ_TAG = "tag:yaml.org,2002:seq"
DVC_NOTE = [
    "# dvc.yaml reads the training settings from this file (params of its train stage):",
    "# they are set below, at their defaults; changing one makes `dvc repro` retrain.",
]


@handle_errors
def init_command(
    table: Path = typer.Argument(..., help="The customer table (CSV or Parquet)."),
    target: str = typer.Option(..., "--target", help="The churn label column."),
    id_column: str | None = typer.Option(None, "--id", help="The customer id column."),
    output: Path = typer.Option(Path("churnops.yaml"), "--output", help="Settings file to write."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that exist."),
    dvc: bool = typer.Option(
        False, "--dvc", help="Also write dvc.yaml: the loop as DVC stages (docs/dvc.md)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Write a commented churnops.yaml for a table: its columns, and every setting."""
    from churnops.data.contract import infer_contract
    from churnops.data.sources import read_table

    if dvc:
        from churnops.errors import ConfigError
        from churnops.orchestration.dvc import CONFIG

        if output.name != CONFIG:  # DVC runs stages in dvc.yaml's folder: churnops reads ./CONFIG
            raise ConfigError(f"With --dvc the settings file must be named {CONFIG}.")
    df = read_table(table)
    contract = infer_contract(df, target, id_column)
    files = {output: render_config(table, output, contract, dvc=dvc)}
    if dvc:
        from churnops.orchestration.dvc import render_dvc_yaml

        source = _relative(table, output.parent)
        files[output.parent / "dvc.yaml"] = render_dvc_yaml(source, target, id_column)
    write_new(files, force)
    result = {
        "files": [str(path) for path in files],
        "source": str(table),
        "target": target,
        "id": id_column,
        "rows": len(df),
        "columns": [{"name": c.name, "role": c.role, "kind": c.kind} for c in contract.columns],
    }
    if as_json:
        print_json(result)
        return
    if dvc:
        out.print(
            f"Wrote {', '.join(map(str, files))}.\n"
            "Next: dvc init (once, in a git repository), then dvc repro; dvc metrics show.",
            markup=False,
            highlight=False,
        )
        return
    train = f"churnops train {table} --target {target}"
    if id_column:
        train += f" --id {id_column}"
    out.print(
        f"Wrote {output}: the {len(contract.columns)} columns of {table} and every setting.\n"
        f"Next: {train}, or churnops pipeline run (it reads pipeline_source from the file).",
        markup=False,
        highlight=False,
    )


def write_new(files: dict[Path, str], force: bool) -> None:
    """Write every file, or none: without ``force`` one that exists stops them all."""
    from churnops.errors import ConfigError

    existing = [str(path) for path in files if path.exists()]
    if existing and not force:
        raise ConfigError(
            f"{', '.join(existing)} already exist(s); pass --force to overwrite.",
            {"paths": existing},
        )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def render_config(table: Path, output: Path, contract: DataContract, dvc: bool = False) -> str:
    """Return the churnops.yaml text for ``table``: header, columns, pipeline, all settings.

    With ``dvc`` the settings dvc.yaml tracks are written set, at their defaults: DVC
    refuses to run a stage whose params are missing from the file.
    """
    from churnops.config import Settings, setting_groups

    fields = Settings.model_fields
    tracked: list[str] = []
    if dvc:
        from churnops.orchestration.dvc import train_params

        tracked = train_params()
    lines = [
        "# churnops.yaml: settings of churnops for this folder (written by `churnops init`).",
        "#",
        "# churnops reads this file from the working directory. An environment variable",
        "# CHURNOPS_<NAME> (e.g. CHURNOPS_TRIALS=30) overrides the setting <name> here.",
        "# Settings left commented out keep their default: uncomment a line to change it.",
        f"# Every setting is described in {DOCS_PAGE}.",
        *(DVC_NOTE if dvc else []),
        "",
        *_columns_comment(table, contract),
        "",
        "# --- This table (`churnops pipeline run` reads it) ---",
    ]
    pipeline = {
        "pipeline_source": _relative(table, output.parent),
        "pipeline_target": contract.target,
        "pipeline_id": contract.id,
    }
    for name, value in pipeline.items():
        lines += [*_describe(name, fields[name]), _yaml(name, value)]
    for group in setting_groups():
        names = [n for n in group.names if n not in pipeline]
        if not names:
            continue
        lines += ["", *_group_header(group)]
        for name in names:
            line = _setting_line(name, fields[name])
            lines += [*_describe(name, fields[name]), line if name in tracked else "# " + line]
    return "\n".join(lines) + "\n"


def _columns_comment(table: Path, contract: DataContract) -> list[str]:
    """List the table's columns with the role and kind the inferred contract gave them."""
    width = max(len(c.name) for c in contract.columns)
    lines = [
        f"# Columns of {table} ({contract.rows:,} rows) as the inferred contract reads them;",
        f"# churn is {contract.target} = {contract.positive_label!r} "
        f"({contract.positive_rate:.1%} of rows). `churnops data contract` writes the whole",
        "# contract (categories, ranges, missing-value policy) as JSON to review or edit.",
    ]
    for spec in contract.columns:
        detail = ""
        if spec.role == "feature" and spec.kind == "numeric":
            detail = f"[{spec.min:g}, {spec.max:g}]"
        elif spec.role == "feature" and spec.kind == "categorical":
            detail = f"{len(spec.categories or {})} levels"
        if spec.note:
            detail = f"{detail}; {spec.note}" if detail else spec.note
        lines.append(f"#   {spec.name:<{width}}  {spec.role:<8} {spec.kind:<12} {detail}".rstrip())
    return lines


def _group_header(group: SettingGroup) -> list[str]:
    """Return a group's heading, its note, and where it is documented."""
    lines = [f"# --- {group.title} ---", *_comment(group.note)]
    page = f"docs/{group.page}" if group.page else DOCS_PAGE
    return [*lines, f"# See {page}."]


def _describe(name: str, field: FieldInfo) -> list[str]:
    """Return a setting's description (and its choices) as comment lines."""
    text = (field.description or "").strip()
    choices = _choices(field.annotation)
    if choices:
        text += f" One of: {', '.join(map(str, choices))}."
    if _secret(name, field):
        text += f" Keep it out of this file: set {_env_names(name, field)} in the environment."
    return _comment(text)


def _comment(text: str) -> list[str]:
    """Return prose as comment lines, none of which reads as a commented-out setting.

    A wrapped line that happens to start ``# word: …`` looks like a setting to uncomment,
    to a reader and to tools that list the file's settings; the word before it moves
    down to that line and the rest is wrapped again (or, with no word to move, the line
    is indented). Prose that itself starts that way gets a leading dash.
    """

    def wrap(words: str, first: str = "# ") -> list[str]:
        return textwrap.wrap(words, WIDTH - 2, initial_indent=first, subsequent_indent="# ")

    prose = " ".join(text.split())
    lines = wrap(prose)
    if lines and SETTING_LIKE.match(lines[0]):
        lines = wrap(prose, "# - ")
    i = 1
    while i < len(lines):
        if SETTING_LIKE.match(lines[i]):
            if " " not in lines[i - 1][2:]:  # no word to move: indent the line instead
                lines[i] = "#  " + lines[i][2:]
            else:
                before, moved = lines[i - 1].rsplit(" ", 1)
                rest = " ".join([moved, *(line[2:] for line in lines[i:])])
                lines[i - 1 :] = [before, *wrap(rest)]
                continue  # the moved word may itself read as a name: look again
        i += 1
    return lines


def _setting_line(name: str, field: FieldInfo) -> str:
    """Return ``name: default`` (a secret's only as ``name:``: no value is ever written)."""
    if _secret(name, field):
        return f"{name}:"
    return _yaml(name, field.get_default(call_default_factory=True))


def _yaml(name: str, value: Any) -> str:
    """Return one ``name: value`` line of YAML: lists in flow style, so one line each."""
    import yaml

    class OneLine(yaml.SafeDumper):
        """Lists as ``[a, b]``: a setting stays one line to uncomment."""

    OneLine.add_representer(
        list, lambda dumper, v: dumper.represent_sequence(SEQ_TAG, v, flow_style=True)
    )
    if isinstance(value, Path):
        value = str(value)
    return yaml.dump({name: value}, Dumper=OneLine, default_flow_style=False, width=10_000).strip()


def _secret(name: str, field: FieldInfo) -> bool:
    """Return True for secrets and for URLs, which may carry a password."""
    return name.endswith(SECRET_SUFFIXES) or "SecretStr" in repr(field.annotation)


def _env_names(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return " or ".join(str(c) for c in choices)
    return f"CHURNOPS_{name.upper()}"


def _choices(annotation: Any) -> tuple[Any, ...]:
    """Return the values a ``Literal`` setting accepts (also inside ``X | None``)."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    for arg in get_args(annotation):
        found = _choices(arg)
        if found:
            return found
    return ()


def _relative(table: Path, folder: Path) -> str:
    """Return ``table`` relative to the settings file's folder when inside it, else absolute."""
    try:
        return str(table.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(table.resolve())
