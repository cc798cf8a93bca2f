"""``import mmsk`` is light: no TensorFlow, Keras, Keras Tuner or widgets until first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import mmsk

HEAVY = ("tensorflow", "keras", "keras_tuner", "ipywidgets")
LAZY = (
    "MultimodalClassifier",
    "MultimodalRegressor",
    "ModalityPreprocessor",
    "ImagePreprocessor",
    "TextVectorizer",
    "AudioFeaturizer",
)


def run(code: str) -> dict:
    """Run code in a fresh interpreter; it prints one JSON object."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_mmsk_loads_no_heavy_module_and_is_fast():
    # CPU time of the import, not wall time: other processes sharing the CPUs (xdist
    # workers, a busy CI host) stretch the wall clock but not the work the import does.
    code = (
        "import json, sys, time\n"
        "start = time.process_time()\n"
        "import mmsk\n"
        "took = time.process_time() - start\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(json.dumps({'seconds': took, 'heavy': heavy}))\n"
    )
    # best of three fresh processes, so one slow start (cold disk cache) does not fail it
    runs = [run(code) for _ in range(3)]
    assert all(r["heavy"] == [] for r in runs), runs
    assert min(r["seconds"] for r in runs) < 1.5, runs


def test_preprocessing_and_inference_stay_light_until_used():
    code = (
        "import json, sys\n"
        "import mmsk, pandas as pd\n"
        "mmsk.infer_modalities(pd.DataFrame({'a': [1.0], 'b': ['x.png']}))\n"
        "mmsk.ImagePreprocessor(size=2).fit_transform([__import__('numpy').zeros((2, 2))])\n"
        "mmsk.ModalityPreprocessor, mmsk.TextVectorizer, mmsk.AudioFeaturizer\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    assert run(code) == []


@pytest.mark.parametrize("name", LAZY)
def test_lazy_names_resolve_and_are_cached(name):
    value = getattr(mmsk, name)
    assert isinstance(value, type) and value.__name__ == name
    assert mmsk.__dict__[name] is value  # resolved once, then a plain attribute
    assert getattr(mmsk, name) is value
    assert name in mmsk.__all__


def test_dir_lists_lazy_names_and_submodules():
    listed = dir(mmsk)
    for name in (*LAZY, "infer_modalities", "ModalityBatch", "ModalitySpec", "__version__"):
        assert name in listed
    for module in ("preprocessing", "models", "exceptions"):
        assert module in listed
        assert getattr(mmsk, module).__name__ == f"mmsk.{module}"


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        mmsk.Nope  # noqa: B018


@pytest.mark.slow  # each case starts TensorFlow in a new process
@pytest.mark.parametrize("value", ["1", "2"])
def test_mmsk_num_threads_sizes_tensorflows_pools(value):
    code = (
        "import json, os\n"
        f"os.environ['MMSK_NUM_THREADS'] = {value!r}\n"
        "from mmsk import _backend\n"
        "t = _backend.tf().config.threading\n"
        "print(json.dumps([t.get_intra_op_parallelism_threads(),"
        " t.get_inter_op_parallelism_threads()]))\n"
    )
    assert run(code) == [int(value), int(value)]


@pytest.mark.slow  # starts TensorFlow in a new process
def test_a_bad_mmsk_num_threads_is_a_clear_error():
    env = {**os.environ, "MMSK_NUM_THREADS": "many"}
    result = subprocess.run(
        [sys.executable, "-c", "from mmsk import _backend; _backend.tf()"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode != 0
    assert "Expected a positive integer in MMSK_NUM_THREADS. Received: 'many'" in result.stderr
