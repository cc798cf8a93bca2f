"""The tasks of ``bench/quality.py``: real data sets, each split once into train and test.

Every task is a :class:`Task`: raw DataFrames (images as uint8 arrays, text as
``str``, numbers, categories as pandas ``category`` columns), targets as NumPy
arrays, the task kind, each column's modality (for the baselines; mmsk infers
its own), a description, the source and the licence.

    >>> from _quality_tasks import TASKS, load_task  # bench/ on sys.path
    >>> task = load_task("icons", seed=0)
    >>> task.X_train.shape, task.kind, task.modalities
    ((1035, 2), 'classification', {'icon': 'image', 'name': 'text'})

The split is stratified for classification (by target decile for
regression), 25 % held out, seeded by ``seed``.  ``quick=True`` keeps at most
500 training and 400 test rows (stratified too) for a smoke run.

The Debian and glyph tasks read files built by ``bench/data/build_*.py``
(licences in ``bench/data/LICENSES.md``); av_digits and icons ship with mmsk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

DATA = Path(__file__).with_name("data")
TEST_SIZE = 0.25
QUICK_TRAIN, QUICK_TEST = 500, 400


@dataclass
class Task:
    """One benchmark task: a train/test split of raw columns and what it is."""

    name: str
    kind: str  # "classification" or "regression"
    description: str
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    modalities: dict[str, str]  # column -> image | text | audio | numeric | categorical
    source: str
    licence: str
    info: dict[str, object] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(np.unique(self.y_train)) if self.kind == "classification" else 0


def _strata(y: np.ndarray, kind: str) -> np.ndarray:
    if kind == "classification":
        return y
    return np.digitize(y, np.quantile(y, np.linspace(0.1, 0.9, 9)))


def _split(
    X: pd.DataFrame, y: np.ndarray, kind: str, seed: int, quick: bool
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    X = X.reset_index(drop=True)
    idx = np.arange(len(X))
    tr, te = train_test_split(
        idx, test_size=TEST_SIZE, random_state=seed, stratify=_strata(y, kind)
    )
    if quick:
        tr, te = _shrink(tr, y, kind, QUICK_TRAIN, seed), _shrink(te, y, kind, QUICK_TEST, seed)
    tr, te = np.sort(tr), np.sort(te)
    return (
        X.iloc[tr].reset_index(drop=True),
        X.iloc[te].reset_index(drop=True),
        y[tr],
        y[te],
    )


def _shrink(idx: np.ndarray, y: np.ndarray, kind: str, n: int, seed: int) -> np.ndarray:
    if len(idx) <= n:
        return idx
    keep, _ = train_test_split(
        idx, train_size=n, random_state=seed, stratify=_strata(y[idx], kind)
    )
    return np.asarray(keep)


def _av_digits() -> tuple[pd.DataFrame, np.ndarray, dict[str, object]]:
    from mmsk.datasets import load_av_digits

    bunch = load_av_digits()
    return bunch.data, bunch.target.to_numpy(), {"sample_rate": bunch.sample_rate}


def _icons() -> tuple[pd.DataFrame, np.ndarray, dict[str, object]]:
    from mmsk.datasets import load_icons

    bunch = load_icons()
    return bunch.data, bunch.target.to_numpy(), {}


def _glyphs() -> tuple[pd.DataFrame, np.ndarray, dict[str, object]]:
    with np.load(DATA / "glyphs.npz") as f:
        X = pd.DataFrame(
            {
                "glyph": list(f["images"]),
                "name": [str(s) for s in f["names"]],
                "font": pd.Categorical([str(s) for s in f["fonts"]]),
            }
        )
        y = np.asarray([str(s) for s in f["category"]], dtype=object)
    return X, y, {}


_CATEGORIES = ["priority", "architecture", "multi_arch"]
_COUNTS = ["n_depends", "n_pre_depends", "n_recommends", "n_suggests", "n_provides"]
N_SECTIONS = 10
PER_SECTION = 250
N_SIZE_ROWS = 3000
N_SIZE_SECTIONS = 20


def _debian() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "debian.csv.gz", keep_default_na=False)
    for col in _CATEGORIES:
        frame[col] = pd.Categorical(frame[col])
    return frame


def _debian_section() -> tuple[pd.DataFrame, np.ndarray, dict[str, object]]:
    frame = _debian()
    top = frame["section"].value_counts().index[:N_SECTIONS]
    rng = np.random.default_rng(0)
    parts = []
    for sec in top:
        rows = frame.index[frame["section"] == sec].to_numpy()
        parts.append(np.sort(rng.choice(rows, size=min(PER_SECTION, len(rows)), replace=False)))
    sub = frame.loc[np.sort(np.concatenate(parts))]
    X = sub[["package", "summary", *_CATEGORIES, *_COUNTS]].copy()
    X.insert(5, "log_installed_kib", np.log10(sub["installed_size_kib"].to_numpy(float)))
    return X, sub["section"].to_numpy(dtype=object), {"sections": list(top)}


def _debian_size() -> tuple[pd.DataFrame, np.ndarray, dict[str, object]]:
    frame = _debian()
    rng = np.random.default_rng(0)
    sub = frame.iloc[np.sort(rng.choice(len(frame), size=N_SIZE_ROWS, replace=False))]
    top = sub["section"].value_counts().index[:N_SIZE_SECTIONS]
    section = sub["section"].where(sub["section"].isin(top), "other")
    X = sub[["package", "summary", *_CATEGORIES, *_COUNTS]].copy()
    X.insert(2, "section", pd.Categorical(section))
    return X, np.log10(sub["installed_size_kib"].to_numpy(float)), {}


_DEBIAN_SOURCE = (
    "Debian 12 'bookworm' main amd64 package index (apt-cache dumpavail), seeded "
    "sample of 12,000 packages in bench/data/debian.csv.gz (bench/data/build_debian.py)"
)
_DEBIAN_LICENCE = (
    "Debian archive metadata; descriptions written by each package's maintainers "
    "(Debian main: DFSG-free licences)"
)


@dataclass(frozen=True)
class TaskSpec:
    """How to build a task: its loader, kind, column modalities and provenance."""

    loader: Callable[[], tuple[pd.DataFrame, np.ndarray, dict[str, object]]]
    kind: str
    modalities: dict[str, str]
    description: str
    source: str
    licence: str


TASKS: dict[str, TaskSpec] = {
    "av_digits": TaskSpec(
        _av_digits,
        "classification",
        {"image": "image", "audio": "audio"},
        "noisy 8x8 handwritten digit + spoken digit (8 kHz) -> digit, 10 classes",
        "mmsk.datasets.load_av_digits (sklearn digits + eSpeak NG speech)",
        "images CC BY 4.0 (UCI); audio generated with eSpeak NG (GPL-3.0+)",
    ),
    "icons": TaskSpec(
        _icons,
        "classification",
        {"icon": "image", "name": "text"},
        "Papirus icon (32x32 RGB) + icon name -> context, 7 imbalanced classes",
        "mmsk.datasets.load_icons (Papirus icon theme 20230104)",
        "GPL-3.0",
    ),
    "glyphs": TaskSpec(
        _glyphs,
        "classification",
        {"glyph": "image", "name": "text", "font": "categorical"},
        "DejaVu glyph (32x32 grey) + Unicode name + font face -> general category, 11 classes",
        "DejaVu fonts 2.37 (fonts-dejavu-core/-extra) rendered with PIL, Unicode names "
        "from Python's unicodedata; bench/data/glyphs.npz (bench/data/build_glyphs.py)",
        "fonts: Bitstream Vera licence, DejaVu changes public domain; Unicode data: "
        "Unicode licence v3",
    ),
    "debian_section": TaskSpec(
        _debian_section,
        "classification",
        {
            "package": "text",
            "summary": "text",
            **dict.fromkeys(_CATEGORIES, "categorical"),
            "log_installed_kib": "numeric",
            **dict.fromkeys(_COUNTS, "numeric"),
        },
        f"Debian package name + one-line description + priority/arch/multi-arch + "
        f"size and dependency counts -> section, top {N_SECTIONS} sections, "
        f"{PER_SECTION} packages each",
        _DEBIAN_SOURCE,
        _DEBIAN_LICENCE,
    ),
    "debian_size": TaskSpec(
        _debian_size,
        "regression",
        {
            "package": "text",
            "summary": "text",
            "section": "categorical",
            **dict.fromkeys(_CATEGORIES, "categorical"),
            **dict.fromkeys(_COUNTS, "numeric"),
        },
        f"Debian package name + one-line description + section/priority/arch/multi-arch + "
        f"dependency counts -> log10 installed size (KiB), {N_SIZE_ROWS} packages",
        _DEBIAN_SOURCE,
        _DEBIAN_LICENCE,
    ),
}


def task_names() -> list[str]:
    """Every task name, in the order the benchmark runs them."""
    return list(TASKS)


def load_task(name: str, *, seed: int = 0, quick: bool = False) -> Task:
    """Build one task's train/test split.

    Parameters
    ----------
    name : str
        A key of :data:`TASKS`.
    seed : int, default=0
        Seed of the split (and of the ``quick`` subsample).
    quick : bool, default=False
        Keep at most 500 training and 400 test rows.

    Returns
    -------
    Task
    """
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; expected one of {task_names()}")
    spec = TASKS[name]
    X, y, info = spec.loader()
    X_train, X_test, y_train, y_test = _split(X, y, spec.kind, seed, quick)
    return Task(
        name=name,
        kind=spec.kind,
        description=spec.description,
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        y_test=y_test,
        modalities=dict(spec.modalities),
        source=spec.source,
        licence=spec.licence,
        info=info,
    )
