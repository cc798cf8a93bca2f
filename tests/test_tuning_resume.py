"""A search killed with SIGKILL resumes from its folder without redoing finished trials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("keras_tuner")

JOB = Path(__file__).parent / "scripts" / "tune_job.py"


def run_job(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, str(JOB), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip


@pytest.mark.slow
def test_killed_search_resumes_and_keeps_finished_trials(tmp_path):
    directory, first, second = tmp_path / "search", tmp_path / "a.json", tmp_path / "b.json"
    # cv=2, so fits 1-4 are trials 0 and 1; fit 6 is the second fold of trial 2.
    killed = run_job("search", str(directory), str(first), "--kill-at-fit", "6")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not first.exists()
    trial_dirs = sorted(p.name for p in (directory / "job").glob("trial_*"))
    assert trial_dirs[:3] == ["trial_0", "trial_1", "trial_2"]
    assert len(list((directory / "job" / "trial_2").glob("fold-*.zip"))) == 1

    done = run_job("search", str(directory), str(second))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(second.read_text())
    assert result["trial_ids"] == ["0", "1", "2", "3"]
    # Trials 0 and 1 were read back, not trained; trial 2 trained only its missing fold.
    assert result["begun"] == ["2", "3"]
    assert result["fits"] == 1 + 2 + 1  # trial 2's second fold, trial 3, the refit
    assert all(s == s for s in result["scores"])  # no NaN
