"""Scale-out with the engines that exist: Keras Tuner's chief/workers and tf.distribute."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).parent / "scripts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(script: str, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPTS / script), *args],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finish(procs: dict[str, subprocess.Popen], timeout: float = 400) -> None:
    try:
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, f"{name} failed:\n{out[-3000:]}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["search", "hypermodel"])
def test_keras_tuner_chief_and_two_workers_share_one_search(mode, tmp_path):
    pytest.importorskip("keras_tuner")
    pytest.importorskip("grpc")
    port, directory = str(free_port()), str(tmp_path / "search")
    env = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
    outs = {name: tmp_path / f"{name}.json" for name in ("chief", "tuner0", "tuner1")}
    procs = {
        name: start(
            "tune_job.py",
            mode,
            directory,
            str(out),
            "--max-trials",
            "4",
            env={**env, "KERASTUNER_TUNER_ID": name},
        )
        for name, out in outs.items()
    }
    finish(procs)
    chief = json.loads(outs["chief"].read_text())
    workers = [json.loads(outs[w].read_text()) for w in ("tuner0", "tuner1")]
    if mode == "search":
        # Every trial lands in the chief's one result, trained once by some worker.
        assert chief["trial_ids"] == ["0", "1", "2", "3"]
        assert chief["begun"] == []  # the chief serves the oracle; it trains no trial
        assert chief["fits"] == 1  # only the refit of the best settings
        begun = [t for w in workers for t in w["begun"]]
        assert sorted(begun) == ["0", "1", "2", "3"]  # each trial ran exactly once
        scores = dict(zip(chief["trial_ids"], chief["scores"], strict=True))
        for worker in workers:
            for trial_id, score in worker["ended"].items():
                assert score == pytest.approx(scores[trial_id])
    else:
        assert chief["trials"] == {t: "COMPLETED" for t in ("0", "1", "2", "3")}
        assert chief["fits"] == 0
        assert sum(1 for w in workers if w["fits"] == 0) == 2  # the hypermodel never calls fit


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_trains_the_same_weights(tmp_path):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    outs = [tmp_path / f"w{i}.json" for i in range(2)]
    procs = {
        f"worker{i}": start("mwms_job.py", str(outs[i]), env={"TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": i}})})
        for i in range(2)
    }  # fmt: skip
    finish(procs, timeout=300)
    a, b = (json.loads(out.read_text()) for out in outs)
    assert len(a["loss"]) == len(b["loss"]) == 3
    assert a["loss"][-1] < a["loss"][0]
    for wa, wb in zip(a["weights"], b["weights"], strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)
    assert a["accuracy"] > 0.6
