"""Quiet TensorFlow and a tiny image table for the plugin's tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pandas as pd
import pytest


def make_frame(n: int = 24, size: int = 16, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Dark or bright small RGB images (uint8 numpy arrays) and a noisy number."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    images = [(rng.integers(0, 90, (size, size, 3)) + 150 * c).astype(np.uint8) for c in y]
    return pd.DataFrame({"image": images, "size": y + rng.normal(0, 0.3, n)}), y


@pytest.fixture(scope="session")
def frame():
    return make_frame()
