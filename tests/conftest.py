"""Test set-up: quiet TensorFlow, one CPU thread pool, deterministic seeds."""

import os
import signal
import struct
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("PYTHONHASHSEED", "0")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2` on 2 cores: one TensorFlow thread per worker (and per child process:
    # docs pages, notebook kernels).  Tiny test models spend about 30% less CPU than on
    # two oversubscribed thread pools.
    os.environ.setdefault("MMSK_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest

COLOURS = ["red", "green", "blue"]


def make_frame(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A small table where every modality tells the class: tinted 8x8 images,
    captions naming the colour, and a noisy number."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    images = []
    for c in y:
        img = rng.integers(0, 60, (8, 8, 3)).astype(np.uint8)
        img[..., c] += 150
        images.append(img)
    words = ["a", "the", "small", "big", "photo", "of", "thing"]
    texts = [" ".join([*rng.choice(words, 3), COLOURS[c], *rng.choice(words, 2)]) for c in y]
    frame = pd.DataFrame(
        {"image": images, "caption": texts, "size": y + rng.normal(0, 0.3, n)},
    )
    return frame, np.array(COLOURS)[y]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the tests that share a module's fitted model on one xdist worker.

    A module- or session-scoped fixture defined in a test module (a fitted estimator,
    installed plugins) is built once per worker that runs one of its tests.  Under
    ``--dist loadgroup`` (pyproject's addopts) the tests that use one are sent to the
    same worker as one unit, so it is built once; other tests are balanced one by one.
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        module = item.nodeid.split("::")[0]
        if info is None or item.get_closest_marker("xdist_group"):
            continue
        shared = [
            name
            for name, defs in info.name2fixturedefs.items()
            if defs[-1].scope in ("module", "session") and defs[-1].baseid == module
        ]
        if shared:  # xdist shows the group after the test id: test_x.py::test_y@test_x
            item.add_marker(pytest.mark.xdist_group(module.rsplit("/", 1)[-1].removesuffix(".py")))


@pytest.fixture(scope="session", autouse=True)
def _thread_limit():
    """Apply MMSK_NUM_THREADS before any test runs a TensorFlow operation."""
    if os.environ.get("MMSK_NUM_THREADS"):
        from mmsk import _backend

        _backend.tf()


@pytest.fixture(scope="session")
def toy():
    return make_frame()


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header but holds (almost) no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def sigint_as_at_a_terminal() -> None:
    """``preexec_fn`` of a child that a test interrupts: SIGINT at its default, even
    where this test run ignores it (a job started in the background inherits SIG_IGN,
    and mmsk's demo leaves an ignored SIGINT alone, on purpose)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
