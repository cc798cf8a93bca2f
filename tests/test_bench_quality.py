"""The tasks of bench/quality.py load with the split they promise (no model is fitted)."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))

from _quality_tasks import TASKS, load_task


def test_glyphs_task_is_a_stratified_quarter_split_of_raw_columns():
    task = load_task("glyphs", seed=0)
    n = len(task.X_train) + len(task.X_test)
    assert n == 2286 and abs(len(task.X_test) / n - 0.25) < 0.01
    assert list(task.X_train.columns) == list(task.modalities) == ["glyph", "name", "font"]
    assert (
        task.X_train["glyph"][0].shape == (32, 32) and task.X_train["glyph"][0].dtype == np.uint8
    )
    assert isinstance(task.X_train["name"][0], str)
    assert isinstance(task.X_train["font"].dtype, pd.CategoricalDtype)
    train = pd.Series(task.y_train).value_counts(normalize=True)
    test = pd.Series(task.y_test).value_counts(normalize=True)
    assert (train - test).abs().max() < 0.02  # stratified
    again = load_task("glyphs", seed=0)
    assert (again.y_test == task.y_test).all()
    other = load_task("glyphs", seed=1)
    assert not (other.X_test["name"] == task.X_test["name"]).all()


def test_debian_size_is_a_regression_without_the_size_among_its_columns():
    task = load_task("debian_size", quick=True)
    assert TASKS["debian_size"].kind == task.kind == "regression"
    assert (len(task.X_train), len(task.X_test)) == (500, 400)
    assert not any("size" in c for c in task.X_train.columns)
    assert task.y_train.dtype == np.float64 and 0.5 < task.y_train.mean() < 4.5


@pytest.mark.slow
def test_boosted_baseline_reads_every_column_and_learns_the_size():
    from _baselines import baseline_names, run_baselines

    task = load_task("debian_size", quick=True)
    assert baseline_names(task) == ["text", "tabular", "concat", "boosted"]
    out = run_baselines(task, only=["boosted"], log=lambda s: None)
    assert list(out) == ["boosted"]
    assert 0.1 < out["boosted"]["r2"] < 1.0  # above the mean's 0 on held-out rows
