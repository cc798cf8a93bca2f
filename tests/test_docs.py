"""The documentation: the site builds without a warning, and every code block runs.

- ``mkdocs build --strict`` of ``mkdocs.yml`` (warnings are errors: a broken link,
  a page missing from the nav, a docstring griffe cannot parse).
- For each page of ``docs/`` and for README.md, in a fresh interpreter with an
  empty working directory: every ```python block, in order, in one namespace, and
  every command of a ```bash/```console block that starts with ``python -m mmsk``
  (``pip install`` and the like are not run).  A block whose fence follows a line
  ``<!-- no-run -->`` is skipped: keep that for what cannot run here (several
  machines, a browser upload); a reason may follow, as in
  ``<!-- no-run: needs two machines -->``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
NO_RUN = "<!-- no-run -->"
PYTHON = {"python", "py", "python3"}
SHELL = {"bash", "sh", "shell", "console", "shell-session"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the block's first line of code
    run: bool  # False when marked <!-- no-run -->


def code_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with their language and position."""
    lines = text.splitlines()
    blocks, i, previous = [], 0, ""
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        indent, fence = len(match["indent"]), match["fence"]
        lang = match["info"].strip().split(" ")[0].lower() if match["info"].strip() else ""
        body, start = [], i + 2
        i += 1
        while i < len(lines) and not (
            lines[i].strip().startswith(fence) and set(lines[i].strip()) == {fence[0]}
        ):
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            i += 1
        skip = previous.startswith(NO_RUN[:-4]) and previous.endswith("-->")
        blocks.append(Block(lang, "\n".join(body) + "\n", start, not skip))
        previous, i = "", i + 1
    return blocks


def mmsk_commands(block: Block) -> list[list[str]]:
    """The ``python -m mmsk ...`` commands of a shell block, as argument lists.

    Leading ``VAR=value`` words stay in the list (the runner puts them in the
    environment); comments and continuation lines are handled as a shell would.
    """
    lines = block.code.splitlines()
    if block.lang in ("console", "shell-session"):  # commands follow a "$ " prompt
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    commands, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = shlex.split(pending + line, comments=True)
        pending = ""
        for part in _split_on_and(words):
            rest = [w for w in part if not ASSIGNMENT.match(w)] if part else []
            if rest[:3] == ["python", "-m", "mmsk"]:
                commands.append(part)
    return commands


def _split_on_and(words: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for word in words:
        if word == "&&":
            parts.append([])
        else:
            parts[-1].append(word)
    return parts


# Runs in the child interpreter: argv[1] is a JSON list of steps.
DRIVER = r"""
import json, os, subprocess, sys

import __main__  # run the blocks as a script does, so that their classes pickle


def run(steps):
    for step in steps:
        if step["kind"] == "python":
            print(f"--- {step['page']}:{step['line']}", flush=True)
            code = "\n" * (step["line"] - 1) + step["code"]
            exec(compile(code, step["page"], "exec"), __main__.__dict__)
            continue
        env, argv = dict(os.environ), list(step["argv"])
        while "=" in argv[0] and not argv[0].startswith("-"):
            key, _, value = argv.pop(0).partition("=")
            env[key] = value
        print(f"--- {step['page']}:{step['line']}: $ {' '.join(argv)}", flush=True)
        argv[0] = sys.executable
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", flush=True)
        if proc.returncode != 0:
            sys.exit(f"{step['page']}:{step['line']}: exit status {proc.returncode}")


with open(sys.argv[1], encoding="utf-8") as fh:
    steps = json.load(fh)
del fh
run(steps)
"""


def steps(page: Path) -> list[dict]:
    name = page.relative_to(ROOT).as_posix()
    out: list[dict] = []
    for block in code_blocks(page.read_text(encoding="utf-8")):
        if not block.run:
            continue
        if block.lang in PYTHON:
            out.append({"kind": "python", "page": name, "line": block.line, "code": block.code})
        elif block.lang in SHELL:
            for argv in mmsk_commands(block):
                out.append({"kind": "shell", "page": name, "line": block.line, "argv": argv})
    return out


def child_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "Agg",
        "MMSK_DATA": str(tmp_path / "mmsk_data"),  # as_paths=True writes here, not in ~
    }


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_code_blocks_run(page, tmp_path):
    todo = steps(page)
    if not todo:
        pytest.skip("no code to run on this page")
    (tmp_path / "steps.json").write_text(json.dumps(todo), encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path / "steps.json")],
        cwd=work,
        env=child_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout[-4000:] + "\n" + proc.stderr[-8000:]).strip()


@pytest.mark.slow
def test_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reference = (site / "api" / "estimators" / "index.html").read_text(encoding="utf-8")
    assert "MultimodalClassifier" in reference and "modality_dropout" in reference
    assert (site / "getting-started" / "index.html").exists()


# ---- the extraction itself -----------------------------------------------------------


def test_code_blocks_are_found_with_their_language_position_and_marker():
    lines = [
        "# Title", "", "```python", "x = 1", "```", "",  # 1-6
        "<!-- no-run -->", "", "```bash", "python -m mmsk demo", "```",  # 7-11
        "<!-- no-run: slow -->", "```python", "z = 0", "```", "",  # 12-16
        "1. a list", "", "    ```py", "    y = x + 1", "    ```", "",  # 17-22
        "````text", "```", "````",  # 23-25
    ]  # fmt: skip
    blocks = code_blocks("\n".join(lines))
    assert [(b.lang, b.line, b.run) for b in blocks] == [
        ("python", 4, True), ("bash", 10, False), ("python", 14, False), ("py", 20, True),
        ("text", 24, True),
    ]  # fmt: skip
    assert blocks[3].code == "y = x + 1\n" and blocks[4].code == "```\n"


def test_only_mmsk_commands_are_run_from_shell_blocks():
    bash = Block(
        "bash",
        'python -m pip install ".[cpu]" && python -m mmsk demo --epochs 1  # quick\n'
        "MMSK_DISABLE_PLUGIN_AUTOLOAD=1 python -m mmsk plugins\npip install x\n"
        "python -m mmsk plugins \\\n  --group encoder\n",
        1,
        True,
    )
    assert mmsk_commands(bash) == [
        ["python", "-m", "mmsk", "demo", "--epochs", "1"],
        ["MMSK_DISABLE_PLUGIN_AUTOLOAD=1", "python", "-m", "mmsk", "plugins"],
        ["python", "-m", "mmsk", "plugins", "--group", "encoder"],
    ]
    console = Block("console", "$ python -m mmsk plugins\nname  group\n$ ls\n", 1, True)
    assert mmsk_commands(console) == [["python", "-m", "mmsk", "plugins"]]
