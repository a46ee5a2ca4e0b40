"""Read the fenced code blocks of a docs page, and run them the way a reader would.

The conventions (docs/contributing.md says the same for writers):

- A fence's info string gives the language and, optionally, ``title="file name"``.
- An HTML comment on the line just above a fence marks it: ``<!-- no-run -->`` (shown, never
  run), ``<!-- expect-exit: N -->`` (each command of the block must exit with N) or
  ``<!-- with-server: NAME=VALUE ... -->`` (a Python block that talks to ``churnops serve``:
  the test starts one with those environment variables, makes a scorer key, and sets
  ``CHURNOPS_API_URL`` and ``CHURNOPS_API_KEY`` for the block).
- In ``console`` blocks a command starts with ``$ ``; it continues on the next line after a
  trailing backslash or while a quote is open (as in bash). Other lines are output.
- Python blocks of one page run in order in one interpreter, like cells of a notebook
  (``block_runner.py``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import wait_ready

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
VENV_BIN = Path(sys.executable).parent

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(
    r"^\s*<!--\s*(?P<marker>no-run|expect-exit:\s*\d+|with-server(?::[^>]*?)?)\s*-->\s*$"
)
BACKGROUND = "# runs in the background"
_TITLE = re.compile(r"""title=(?:"([^"]*)"|'([^']*)'|(\S+))""")


@dataclass
class Block:
    """One fenced block: its language, attributes, text and where it starts (1-based)."""

    lang: str
    text: str
    line: int  # line of the first content line, so tracebacks can point into the page
    title: str | None = None
    no_run: bool = False
    expect_exit: int = 0
    server_env: dict[str, str] | None = None
    info: str = ""

    @property
    def is_python(self) -> bool:
        return self.lang in ("python", "py")


@dataclass
class Command:
    """One ``$ `` command of a console block, continuation lines joined."""

    text: str
    line: int
    output: list[str] = field(default_factory=list)

    @property
    def background(self) -> bool:
        """Whether the page marks it as running in the background (a server)."""
        return BACKGROUND in self.text

    def argv(self, variables: dict[str, str] | None = None) -> list[str]:
        """Split like bash, with ``$NAME``/``${NAME}`` replaced from ``variables``."""
        text = self.text
        if variables is not None:
            text = expand(text, variables)
        return shlex.split(text, comments=True)


def read_blocks(path: Path) -> list[Block]:
    """Return every fenced block of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"].strip()
        marker = _marker_above(lines, i)
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        lang = info.split()[0].lstrip(".").lower() if info else ""
        title = _TITLE.search(info)
        block = Block(
            lang=lang,
            text="\n".join(body) + "\n",
            line=i + 2,
            title=next((g for g in title.groups() if g is not None), None) if title else None,
            info=info,
        )
        if marker == "no-run":
            block.no_run = True
        elif marker and marker.startswith("expect-exit"):
            block.expect_exit = int(marker.split(":", 1)[1])
        elif marker and marker.startswith("with-server"):
            assignments = shlex.split(marker.partition(":")[2])
            block.server_env = dict(a.split("=", 1) for a in assignments)
        blocks.append(block)
        i = j + 1
    return blocks


def _marker_above(lines: list[str], i: int) -> str | None:
    k = i - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    if k >= 0 and (match := _MARKER.match(lines[k])):
        marker = match["marker"].strip()
        return re.sub(r"\s+", "", marker) if marker.startswith("expect-exit") else marker
    return None


def commands(block: Block) -> list[Command]:
    """Return the ``$ `` commands of a console block with their output lines."""
    result: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            if result:
                result[-1].output.append(line)
            i += 1
            continue
        start = i
        text = line[2:]
        while True:
            if text.endswith("\\") and i + 1 < len(lines):
                text = text[:-1] + " " + lines[i + 1].strip()
                i += 1
                continue
            try:
                shlex.split(text, comments=True)
            except ValueError:  # an open quote: the command goes on, newline included
                if i + 1 >= len(lines):
                    raise
                text = text + "\n" + lines[i + 1]
                i += 1
                continue
            break
        result.append(Command(text=text, line=block.line + start))
        i += 1
    return result


def expand(text: str, variables: dict[str, str]) -> str:
    """Replace ``$NAME`` and ``${NAME}`` like the shell would; an unknown name is an error."""

    def value(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name not in variables:
            raise KeyError(f"${name} is used before a command on the page sets it")
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def clean_env(home: Path) -> dict[str, str]:
    """The environment of a reader with a fresh install: no churnops or MLflow settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CHURNOPS_")
        and key not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    }
    env["CHURNOPS_HOME"] = str(home)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "100"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class PythonSession:
    """One interpreter that runs a page's Python blocks in order, in one namespace."""

    def __init__(self, cwd: Path, env: dict[str, str], page: Path) -> None:
        self.page = page
        self.log = cwd / ".python-session.log"
        self._log_file = self.log.open("wb")
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("block_runner.py"))],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
        )

    def run(self, block: Block) -> dict[str, object]:
        """Run one block; return ``{"ok", "output", "error"}``."""
        return self.run_code(block.text, line=block.line)

    def run_code(self, code: str, line: int = 1) -> dict[str, object]:
        """Run code as if it stood at ``line`` of the page."""
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        request = {"code": code, "filename": str(page), "line": line}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the Python session died; its log:\n{self.log.read_text()[-4000:]}")
        return json.loads(answer)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log_file.close()


class Server:
    """``churnops serve`` started the way a page says, awaited on ``/readyz``, stopped."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = cwd / f"serve-{port}.log"
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Return once ``/readyz`` answers 200; raise with the server's log otherwise."""
        try:
            wait_ready(self.url, timeout, died=self._died)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{self.log_tail()}") from None

    def _died(self) -> str | None:
        code = self._proc.poll()
        return None if code is None else f"the server exited {code}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """Ctrl-C (no drain delay), then kill if it does not exit in time."""
        import signal

        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
