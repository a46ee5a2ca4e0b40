"""Run Python blocks of a docs page in one namespace, like the cells of a notebook.

One JSON request per stdin line (``{"code", "filename", "line"}``), one JSON answer per
line on the original stdout (``{"ok", "output", "error"}``). Anything a block or its child
processes print goes to stderr, so it cannot garble the answers. Code is compiled with
blank lines in front, so a traceback names the page and the page's own line number.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback


def main() -> None:
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # child processes inherit fd 1: send it to the log
    sys.stdout = sys.stderr
    namespace: dict[str, object] = {"__name__": "__main__"}
    for request_line in sys.stdin:
        request = json.loads(request_line)
        code = "\n" * (request["line"] - 1) + request["code"]
        buffer = io.StringIO()
        answer: dict[str, object]
        try:
            with contextlib.redirect_stdout(buffer):
                exec(compile(code, request["filename"], "exec"), namespace)
            answer = {"ok": True, "output": buffer.getvalue(), "error": None}
        except BaseException:
            answer = {"ok": False, "output": buffer.getvalue(), "error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
