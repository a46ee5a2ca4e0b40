"""DVC as one more driver of the loop: a ``dvc.yaml`` whose stages call the churnops CLI.

    contract -> validate -> train -> evaluate

Teams that version data with DVC run ``dvc repro`` and ``dvc metrics show/diff``; churnops
only writes the pipeline (``churnops init --dvc``). What DVC caches is decided by each
stage's deps, params and outs, so they are exactly what the command reads and writes:

- ``contract`` reads the table and writes ``contract.json``;
- ``validate`` reads the table and the contract and writes its report (and fails the
  pipeline, exit 1, when the table breaks the contract);
- ``train`` reads the table, the contract, the validation report (so it runs after it)
  and the settings that change what is trained — every setting of the training and
  decision-threshold groups of :func:`churnops.config.setting_groups`, read by DVC from
  ``churnops.yaml`` — and writes its ``--json`` summary (which names the version it
  registered) and its holdout metrics;
- ``evaluate`` reads that summary and writes ``metrics.json``, DVC's metrics file.

Every out is a small JSON file kept by git (``cache: false``), not in DVC's cache: the
model itself lives in the MLflow registry under the churnops home, which DVC does not
track. Changing a training setting reruns train and evaluate only; the table reruns all.
"""

from __future__ import annotations

import shlex

CONFIG = "churnops.yaml"
CONTRACT = "contract.json"
VALIDATION = "validation.json"
TRAINED = "train.json"
TRAIN_METRICS = "train-metrics.json"
METRICS = "metrics.json"
TRAINING_GROUPS = ("seed", "threshold_strategy")
"""Settings whose groups change what training produces (tuning budget, folds, metric,
threshold and campaign value): a group is named by one of its settings, so a setting
added to a group later is tracked without changing this module."""

HEADER = """\
# dvc.yaml: the churnops loop as DVC stages (written by `churnops init --dvc`).
#
#   dvc repro           runs what changed: contract -> validate -> train -> evaluate
#   dvc metrics show    prints metrics.json (the new version's holdout metrics)
#   dvc params diff     shows the training settings changed in churnops.yaml
#
# Training settings are read by DVC from churnops.yaml (the `params` of train): change one
# there and `dvc repro` retrains and re-evaluates, nothing else. The model lives in the
# MLflow registry under the churnops home (.churnops/ by default), not in DVC's cache.
"""


def train_params() -> list[str]:
    """Return the settings the train stage tracks, in churnops.yaml order."""
    from churnops.config import setting_groups

    return [n for g in setting_groups() if set(TRAINING_GROUPS) & set(g.names) for n in g.names]


def render_dvc_yaml(table: str, target: str, id_column: str | None) -> str:
    """Return the ``dvc.yaml`` text for a table (its path relative to the dvc.yaml folder)."""
    import yaml

    label = ["--target", target, *(["--id", id_column] if id_column else [])]
    train = [table, *label, "--contract", CONTRACT, "--metrics-out", TRAIN_METRICS, "--json"]
    stages = {
        "contract": {
            "cmd": _cmd("data", "contract", table, *label, "--out", CONTRACT),
            "deps": [table],
            "outs": [_uncached(CONTRACT)],
        },
        "validate": {
            "cmd": _cmd("validate", table, "--contract", CONTRACT, "--json", stdout=VALIDATION),
            "deps": [table, CONTRACT],
            "outs": [_uncached(VALIDATION)],
        },
        "train": {
            "cmd": _cmd("train", *train, stdout=TRAINED),
            "deps": [table, CONTRACT, VALIDATION],
            "params": [{CONFIG: train_params()}],
            "outs": [_uncached(TRAINED), _uncached(TRAIN_METRICS)],
        },
        "evaluate": {
            "cmd": _cmd("evaluate", "--trained", TRAINED, "--out", METRICS),
            "deps": [TRAINED],
            "metrics": [_uncached(METRICS)],
        },
    }
    body = yaml.safe_dump({"stages": stages}, sort_keys=False, width=10_000)
    return HEADER + "\n" + body


def _cmd(*words: str, stdout: str | None = None) -> str:
    """Return a churnops command line, quoted for the shell DVC runs it in."""
    line = shlex.join(["churnops", *words])
    return f"{line} > {shlex.quote(stdout)}" if stdout else line


def _uncached(path: str) -> dict[str, dict[str, bool]]:
    """Return an out kept by git, not DVC's cache (a fresh dict: YAML would alias a shared one)."""
    return {path: {"cache": False}}
