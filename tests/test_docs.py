"""The documentation: the site builds without a warning, and every code block runs.

- ``mkdocs build --strict`` of ``mkdocs.yml`` (warnings are errors: a broken link,
  a page missing from the nav, a docstring griffe cannot parse).
- For each page of ``docs/`` and for README.md, in a fresh process with an empty
  working directory: every ```python block, in order, in one namespace, and
  every command of a ```bash/```console block that starts with ``python -m mmsk``
  (``pip install`` and the like are not run).  A block whose fence follows a line
  ``<!-- no-run -->`` is skipped: keep that for what cannot run here (several
  machines, a browser upload); a reason may follow, as in
  ``<!-- no-run: needs two machines -->``.

The fresh process is forked from a runner that has imported TensorFlow, Keras,
scikit-learn and pandas and run nothing else (``RUNNER``): each page starts with
its own ``__main__``, working directory and environment, without paying the
imports again (8-12 s a page on 2 cores).
"""

from __future__ import annotations

import atexit
import functools
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

# A child interpreter that imports the heavy libraries once, then forks a process per
# page: it reads one JSON job a line and answers a line with the page's exit status.
# TensorFlow has run no operation before the fork (no thread pools to inherit).
RUNNER = r"""
import json, os, signal, sys, traceback, types

import keras, pandas, sklearn, tensorflow  # what every page imports

for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:  # the page's process
        signal.alarm(job["timeout"])  # a hung page is killed, and says so
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(job["cwd"])
        os.environ.update(job["env"])
        sys.argv = ["-c", job["steps"]]
        main = types.ModuleType("__main__")  # the page's own namespace, as a script's
        sys.modules["__main__"] = main
        try:
            exec(job["driver"], main.__dict__)
            code = 0
        except SystemExit as stop:  # sys.exit(), sys.exit(n) or sys.exit("message")
            code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
            if isinstance(stop.code, str):
                print(stop.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)
"""


@functools.cache
def runner() -> subprocess.Popen:
    """This test process's page runner (started on first use, closed at exit)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
        text=True,
    )
    atexit.register(proc.stdin.close)  # the runner ends at the end of its input
    return proc


def run_page(todo: list[dict], tmp_path: Path, timeout: int = 900) -> tuple[int, str]:
    """Run a page's steps in a fresh process: its exit status and its output."""
    work, log = tmp_path / "work", tmp_path / "page.log"
    work.mkdir(parents=True)
    (tmp_path / "steps.json").write_text(json.dumps(todo), encoding="utf-8")
    job = {"driver": DRIVER, "steps": str(tmp_path / "steps.json"), "cwd": str(work),
           "log": str(log), "timeout": timeout,
           "env": {"MMSK_DATA": str(tmp_path / "mmsk_data")}}  # fmt: skip
    proc = runner()
    proc.stdin.write(json.dumps(job) + "\n")
    proc.stdin.flush()
    reply = proc.stdout.readline()
    output = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    if not reply:
        return -1, output + f"\nthe page runner ended (exit status {proc.poll()})"
    status = json.loads(reply)["status"]
    if status < 0:
        output += f"\nkilled by signal {-status} (SIGALRM: over {timeout} s)"
    return status, output


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


def child_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "Agg",
    }


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_code_blocks_run(page, tmp_path):
    todo = steps(page)
    if not todo:
        pytest.skip("no code to run on this page")
    status, output = run_page(todo, tmp_path)  # MMSK_DATA: as_paths=True writes there
    assert status == 0, output[-12000:].strip()


@pytest.mark.slow
def test_each_page_starts_fresh_and_a_failure_names_its_page_and_line(tmp_path):
    def step(code: str, line: int = 1) -> dict:
        return {"kind": "python", "page": "docs/x.md", "line": line, "code": code}

    leak = "import os\nLEAKED = 1\nos.environ['LEAKED'] = '1'\nopen('file', 'w').close()\n"
    assert run_page([step(leak)], tmp_path / "a") == (0, "--- docs/x.md:1\n")
    check = (
        "import os\nassert 'LEAKED' not in globals() and 'LEAKED' not in os.environ\n"
        "assert os.listdir('.') == [] and __name__ == '__main__'\n"
        "class Thing: pass\n"
        "import pickle\nassert type(pickle.loads(pickle.dumps(Thing()))) is Thing\n"
    )
    status, output = run_page([step(check), step("1 / 0", line=7)], tmp_path / "b")
    assert status == 1 and 'File "docs/x.md", line 7' in output and "ZeroDivisionError" in output
    status, output = run_page([step("import time\ntime.sleep(30)")], tmp_path / "c", timeout=1)
    assert status < 0 and "over 1 s" in output


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
