"""Atheris fuzz targets, run as `python -m reliability.fuzz_targets -runs=N CORPUS...`.

Why a subprocess: libFuzzer owns the process (it exits when done), a hard crash (a
segfault in a C library reading a fuzzed model file) must not take the suite down, and
the parent reads the execution count from libFuzzer's own output.

Which target and where to write findings come from the environment (libFuzzer keeps
argv): RELIABILITY_FUZZ_TARGET = codec | contract | artifact, RELIABILITY_FUZZ_DIR.

A *declared* error is one the library promises for bad input (the `churnops.errors` tree;
pydantic's ValidationError for a contract). Anything else is a finding: it is written to
findings.jsonl (one line per distinct exception site) and the run goes on, so one run
counts every distinct crash instead of stopping at the first.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

import atheris

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "artifacts"
FAMILIES = ("logistic", "lightgbm", "xgboost")

with atheris.instrument_imports(include=["churnops"]):
    import orjson
    from pydantic import ValidationError

    from churnops.data.contract import DataContract
    from churnops.errors import ChurnopsError
    from churnops.scoring import RecordCodec
    from churnops.scoring.artifact import load_artifact

OUT = Path(os.environ.get("RELIABILITY_FUZZ_DIR", "."))
_seen: set[str] = set()


def _finding(exc: BaseException, data: bytes) -> None:
    """Record an undeclared exception once per (type, innermost churnops frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    inner = [f for f in frames if "churnops" in f.filename] or frames
    site = f"{inner[-1].filename}:{inner[-1].lineno}" if inner else "?"
    key = f"{type(exc).__name__}@{site}"
    if key in _seen:
        return
    _seen.add(key)
    with (OUT / "findings.jsonl").open("a") as handle:
        handle.write(
            json.dumps(
                {
                    "key": key,
                    "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                    "input_hex": data[:2000].hex(),
                    "trace": "".join(traceback.format_exception(exc))[-3000:],
                }
            )
            + "\n"
        )


def _contract(family: str = "logistic") -> DataContract:
    text = (FIXTURES / family / "model" / "contract.json").read_text()
    return DataContract.model_validate_json(text)


CODEC = RecordCodec(_contract())


def codec_one(data: bytes) -> None:
    """A fuzzed JSON body through the API's record codec (single and batch paths)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return  # the API answers 422 before the codec sees it
    try:
        if isinstance(value, list):
            CODEC.encode_matrix(value)
        elif isinstance(value, dict) and isinstance(value.get("customers"), list):
            CODEC.encode_matrix(value["customers"])
        else:
            CODEC.encode(value)
            if isinstance(value, dict):
                CODEC.customer_id(value)
    except ChurnopsError:
        pass  # ScoringInputError is the codec's declared error (the tree's root is too)
    except Exception as exc:
        _finding(exc, data)


def contract_one(data: bytes) -> None:
    """A fuzzed contract file through the contract loader, then a codec built from it."""
    try:
        contract = DataContract.model_validate_json(data)
        RecordCodec(contract)
    except (ValidationError, ChurnopsError):
        pass
    except Exception as exc:
        _finding(exc, data)


_ART_FILES: list[tuple[str, str, bytes]] = []  # (family, file name, original bytes)
_WORK: dict[str, Path] = {}


def _artifact_setup() -> None:
    for family in FAMILIES:
        src = FIXTURES / family / "model"
        work = OUT / "artifact" / family
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(src, work)
        _WORK[family] = work
        for path in sorted(src.iterdir()):
            _ART_FILES.append((family, path.name, path.read_bytes()))


def artifact_one(data: bytes) -> None:
    """One file of a committed model artifact replaced by fuzzed bytes, then loaded.

    The first byte picks the family and file; the rest is the file's new content (the
    seed corpus holds every real file, so mutations start from well-formed models).
    """
    if not data:
        return
    family, name, original = _ART_FILES[data[0] % len(_ART_FILES)]
    path = _WORK[family] / name
    path.write_bytes(data[1:])
    try:
        load_artifact(_WORK[family])  # no manifest: parse what the bytes say
    except (ChurnopsError, ValidationError):
        pass
    except Exception as exc:
        _finding(exc, data)
    finally:
        path.write_bytes(original)


def write_seeds(target: str, corpus: Path) -> None:
    """Seed inputs: real records and batches, real contracts, real artifact files."""
    corpus.mkdir(parents=True, exist_ok=True)
    seeds: list[bytes] = []
    if target == "codec":
        from reliability.load import customers

        records = customers()[:5]
        seeds = [orjson.dumps(r) for r in records]
        seeds.append(orjson.dumps(records))
        seeds.append(orjson.dumps({"customers": records[:2]}))
        seeds.append(b'{"customer_id": "C\\u0000", "tenure": "12.5"}')
    elif target == "contract":
        seeds = [(FIXTURES / f / "model" / "contract.json").read_bytes() for f in FAMILIES]
    else:
        _artifact_setup()
        seeds = [bytes([i]) + content for i, (_, _, content) in enumerate(_ART_FILES)]
    for i, seed in enumerate(seeds):
        (corpus / f"seed-{i}").write_bytes(seed)


TARGETS: dict[str, Any] = {"codec": codec_one, "contract": contract_one, "artifact": artifact_one}


def main() -> None:
    """Run the target named by RELIABILITY_FUZZ_TARGET under libFuzzer."""
    target = os.environ["RELIABILITY_FUZZ_TARGET"]
    if target == "artifact":
        _artifact_setup()
    atheris.Setup(sys.argv, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
