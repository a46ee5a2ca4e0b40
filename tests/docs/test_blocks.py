"""The reader of docs pages (tests/docs/blocks.py) parses blocks the way the pages mean them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.blocks import DOCS, commands, expand, read_blocks

PAGE = """# A page

```python
x = 1
```

<!-- expect-exit: 1 -->
```console
$ churnops validate bad.csv --contract c.json
Validation FAILED
$ KEY=$(churnops keys create --name crm)
$ churnops serve  # runs in the background: a second terminal
$ curl -s -X POST 'http://127.0.0.1:8000/v1/predict' \\
    -H "Authorization: Bearer $KEY" \\
    -d '{"a": 1,
         "b": "x y"}'
{"probability": 0.5}
```

<!-- no-run -->
```python
raise SystemExit
```

!!! note
    ```yaml title="churnops.yaml"
    trials: 3
    ```

<!-- with-server: CHURNOPS_HOME=.nb -->
````python
print("```")
````
"""


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "page.md"
    path.write_text(PAGE)
    return path


def test_blocks_languages_markers_and_lines(page: Path) -> None:
    blocks = read_blocks(page)
    assert [b.lang for b in blocks] == ["python", "console", "python", "yaml", "python"]
    assert blocks[0].text == "x = 1\n"
    assert blocks[0].line == 4  # the first line of code, for tracebacks into the page
    assert blocks[1].expect_exit == 1
    assert blocks[2].no_run
    assert blocks[3].title == "churnops.yaml"
    assert blocks[3].text == "trials: 3\n"  # the admonition's indent is removed
    assert blocks[4].server_env == {"CHURNOPS_HOME": ".nb"}
    assert blocks[4].text == 'print("```")\n'  # a longer fence holds a shorter one


def test_console_commands_join_continuations_and_open_quotes(page: Path) -> None:
    cmds = commands(read_blocks(page)[1])
    assert [c.text.split()[0] for c in cmds] == ["churnops", "KEY=$(churnops", "churnops", "curl"]
    assert cmds[0].output == ["Validation FAILED"]
    assert cmds[2].background
    assert not cmds[0].background
    argv = cmds[3].argv({"KEY": "chk_1"})
    assert argv[argv.index("-H") + 1] == "Authorization: Bearer chk_1"
    assert argv[-1] == '{"a": 1,\n         "b": "x y"}'
    assert cmds[3].line == 13


def test_unknown_variables_are_an_error() -> None:
    assert expand("a ${B} $C", {"B": "1", "C": "2"}) == "a 1 2"
    with pytest.raises(KeyError, match=r"\$D"):
        expand("$D", {})


def test_the_run_pages_have_what_their_tests_need() -> None:
    blocks = read_blocks(DOCS / "own-table.md")
    assert any(b.is_python for b in blocks)
    lines = [c.text for b in blocks if b.lang == "console" for c in commands(b)]
    assert any("serve" in line and "# runs in the background" in line for line in lines)


def test_docs_pages_named_by_the_code_exist() -> None:
    """Messages, comments and settings files point people at docs pages: those pages exist."""
    import re

    from churnops.config import setting_groups
    from tests.docs.blocks import ROOT

    for group in setting_groups():
        if group.page:
            assert (DOCS / group.page).exists(), f"setting group {group.title!r}: {group.page}"
    cited = {
        (match, path.relative_to(ROOT))
        for path in (ROOT / "src").rglob("*.py")
        for match in re.findall(r"docs/[\w/.-]+\.md", path.read_text(encoding="utf-8"))
    }
    missing = sorted(f"{source}: {page}" for page, source in cited if not (ROOT / page).exists())
    assert not missing, "pages named in src/ that docs/ does not have:\n" + "\n".join(missing)
