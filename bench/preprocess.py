"""Preprocessing throughput: mmsk's transformers against Keras, PIL and scikit-learn.

Images: a folder of real PNG and JPEG files (varied sizes, RGB and grey, in
class sub-folders) is decoded and resized to 64x64 RGB by

* ``mmsk.preprocessing.ImagePreprocessor(size=(64, 64)).fit(paths).transform(paths)``
* ``keras.utils.image_dataset_from_directory(..., image_size=(64, 64))``, fully
  iterated into one NumPy array (the **baseline**)
* a plain single-threaded PIL loop (open, convert to RGB, resize, ``np.asarray``).

Texts: seeded sentences of Zipf-distributed pseudo-words are turned into
features by

* ``mmsk.preprocessing.TextVectorizer(max_tokens=20000, sequence_length=64)``,
  fit + transform
* ``keras.layers.TextVectorization`` with the same settings, adapt + call (the
  **baseline**)
* ``sklearn.feature_extraction.text.CountVectorizer(max_features=20000)``,
  fit_transform (a bag of words, not padded sequences: for scale only).

Every timing is the best of ``--repeat`` runs (the methods take turns, round
after round) after one untimed warm-up on a small slice.  The tables give
wall and CPU seconds (CPU: all threads of the process), items per second, and
``mmsk/this``: mmsk's throughput divided by that row's (that row's time over
mmsk's), by wall time and by CPU time.  The goal is ``mmsk / baseline >= 1.0``
by wall time (mmsk not slower than the Keras path); the CPU-time ratio says
how much work each path does per item, and holds up better on a busy machine.

Usage::

    python bench/preprocess.py                  # 2,000 images, 50,000 texts, best of 3
    python bench/preprocess.py --quick          # about 20 s
    python bench/preprocess.py --images 500 --texts 0 --repeat 5
    python bench/preprocess.py --data /tmp/mmsk-bench-images   # keep and reuse the files

With ``--data DIR`` the generated images are kept in DIR and reused by later
runs with the same ``--images`` and ``--seed``; otherwise they go to a
temporary folder that is removed at exit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
from _common import load_warning, versions  # bench/ is sys.path[0]
from PIL import Image

IMAGE_SIZE = (64, 64)
KERAS_BATCH = 64
N_CLASSES = 4
MAX_TOKENS = 20000
SEQUENCE_LENGTH = 64
VOCABULARY = 5000
MARKER = "mmsk-bench.json"


# --------------------------------------------------------------------------- data
def _one_image(rng: np.random.Generator) -> Image.Image:
    """A smooth colour field with a few rectangles and mild noise, 100-600 px a side."""
    h, w = (int(v) for v in rng.integers(100, 601, size=2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-1.0, 1.0, size=3)
        freq = rng.uniform(0.005, 0.05)
        channels.append(127.5 + 90.0 * np.sin(freq * (a * xx + b * yy) + 6.0 * c))
    img = np.stack(channels, axis=-1)
    for _ in range(int(rng.integers(1, 5))):
        y0, x0 = int(rng.integers(0, h - 10)), int(rng.integers(0, w - 10))
        y1, x1 = y0 + int(rng.integers(10, h // 2 + 11)), x0 + int(rng.integers(10, w // 2 + 11))
        img[y0:y1, x0:x1] = rng.uniform(0, 255, size=3)
    img += rng.normal(0.0, 8.0, size=img.shape)
    pixels = np.clip(img, 0, 255).astype(np.uint8)
    out = Image.fromarray(pixels, mode="RGB")
    return out.convert("L") if rng.random() < 0.1 else out


def make_images(root: Path, n: int, seed: int) -> list[Path]:
    """Write ``n`` images (alternately PNG and JPEG) under ``root/class_k/``; reuse if present."""
    marker = root / MARKER
    wanted = {"images": n, "seed": seed, "version": 1}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return list_images(root)
    if root.exists() and any(root.iterdir()) and not marker.exists():
        sys.exit(f"--data {root} exists and was not made by this script; give an empty folder")
    for old in root.glob("class_*/*"):
        old.unlink()
    rng = np.random.default_rng(seed)
    for k in range(N_CLASSES):
        (root / f"class_{k}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = _one_image(rng)
        folder = root / f"class_{i % N_CLASSES}"
        if i % 2:
            img.save(folder / f"img_{i:05d}.jpg", quality=90)
        else:
            img.save(folder / f"img_{i:05d}.png")
    marker.write_text(json.dumps(wanted))
    return list_images(root)


def list_images(root: Path) -> list[Path]:
    """Image files under ``root``'s class folders, in a stable order."""
    return sorted(p for p in root.glob("class_*/*") if p.suffix in (".png", ".jpg"))


def _syllables(rng: np.random.Generator, n: int) -> list[str]:
    onsets = [
        "",
        "b",
        "c",
        "d",
        "f",
        "g",
        "h",
        "k",
        "l",
        "m",
        "n",
        "p",
        "r",
        "s",
        "t",
        "v",
        "w",
        "br",
        "ch",
        "cl",
        "dr",
        "gr",
        "pl",
        "sh",
        "st",
        "th",
        "tr",
    ]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck"]
    words: set[str] = set()
    while len(words) < n:
        parts = int(rng.choice([1, 2, 2, 3, 3, 4]))
        words.add(
            "".join(
                rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(parts)
            )
        )
    return sorted(words)


def make_texts(n: int, seed: int) -> list[str]:
    """``n`` sentences of 4-40 pseudo-words from a seeded Zipf law over a fixed vocabulary."""
    rng = np.random.default_rng(seed)
    vocab = np.asarray(_syllables(rng, VOCABULARY), dtype=object)
    rng.shuffle(vocab)
    weights = 1.0 / np.arange(1, VOCABULARY + 1) ** 1.07
    lengths = rng.integers(4, 41, size=n)
    words = vocab[rng.choice(VOCABULARY, size=int(lengths.sum()), p=weights / weights.sum())]
    ends = rng.choice([".", ".", ".", "!", "?"], size=n)
    texts, start = [], 0
    for length, end in zip(lengths, ends, strict=True):
        sentence = list(words[start : start + length])
        start += length
        sentence[0] = sentence[0].capitalize()
        if length > 8:
            sentence[length // 2] += ","
        texts.append(" ".join(sentence) + end)
    return texts


# -------------------------------------------------------------- methods and timing
def image_methods(root: Path) -> dict[str, Callable[[list[Path]], np.ndarray]]:
    """name -> function(paths) returning (N, 64, 64, 3) images."""
    import keras

    from mmsk.preprocessing import ImagePreprocessor

    def run_mmsk(paths: list[Path]) -> np.ndarray:
        files = [str(p) for p in paths]
        return ImagePreprocessor(size=IMAGE_SIZE).fit(files).transform(files)

    def run_keras(paths: list[Path]) -> np.ndarray:
        # The whole folder (or the warm-up's own small folder) is read by Keras itself.
        folder = paths[0].parent.parent
        ds = keras.utils.image_dataset_from_directory(
            folder, image_size=IMAGE_SIZE, batch_size=KERAS_BATCH, shuffle=False, verbose=False
        )
        return np.concatenate([x.numpy() for x, _ in ds])

    def run_pil(paths: list[Path]) -> np.ndarray:
        out = np.empty((len(paths), *IMAGE_SIZE, 3), np.uint8)
        for i, p in enumerate(paths):
            with Image.open(p) as img:
                rgb = img.convert("RGB").resize(IMAGE_SIZE[::-1], Image.Resampling.BILINEAR)
                out[i] = np.asarray(rgb)
        return out

    return {
        "mmsk ImagePreprocessor": run_mmsk,
        "keras image_dataset_from_directory": run_keras,
        "PIL loop (1 thread)": run_pil,
    }


def text_methods() -> dict[str, Callable[[list[str]], Any]]:
    """name -> function(texts) returning the features."""
    import keras
    from sklearn.feature_extraction.text import CountVectorizer

    from mmsk.preprocessing import TextVectorizer

    def run_mmsk(texts: list[str]) -> np.ndarray:
        vec = TextVectorizer(max_tokens=MAX_TOKENS, sequence_length=SEQUENCE_LENGTH)
        return vec.fit(texts).transform(texts)

    def run_keras(texts: list[str]) -> np.ndarray:
        layer = keras.layers.TextVectorization(
            max_tokens=MAX_TOKENS, output_sequence_length=SEQUENCE_LENGTH
        )
        layer.adapt(texts)
        return layer(texts).numpy()

    def run_sklearn(texts: list[str]) -> Any:
        return CountVectorizer(max_features=MAX_TOKENS).fit_transform(texts)

    return {
        "mmsk TextVectorizer": run_mmsk,
        "keras TextVectorization": run_keras,
        "sklearn CountVectorizer": run_sklearn,
    }


BASELINES = {"images": "keras image_dataset_from_directory", "texts": "keras TextVectorization"}


def measure(
    methods: dict[str, Callable[[Any], Any]], items: Any, warmup: Any, repeat: int
) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per method: its best wall time of ``repeat`` runs.

    Each method gets one untimed warm-up call on ``warmup``; then the methods
    take turns, round after round, so that a change in the machine's load
    hits them all alike.  CPU time is the whole process's (every thread): it
    shows how many cores a method keeps busy, and it moves less than wall time
    when other processes compete for the cores.
    """
    for fn in methods.values():
        fn(warmup)
    seconds = {name: (float("inf"), float("nan")) for name in methods}
    for _ in range(repeat):
        for name, fn in methods.items():
            wall0, cpu0 = time.perf_counter(), time.process_time()
            out = fn(items)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            if out.shape[0] != len(items):
                raise RuntimeError(f"{name} returned {out.shape[0]} rows for {len(items)} inputs")
            if wall < seconds[name][0]:
                seconds[name] = (wall, cpu)
    return seconds


def print_table(
    title: str, unit: str, n: int, seconds: dict[str, tuple[float, float]], baseline: str
) -> tuple[float, float]:
    """Print one table; return mmsk's throughput over the baseline's, by wall and by CPU time."""
    mmsk_name = next(k for k in seconds if k.startswith("mmsk"))
    mmsk_wall, mmsk_cpu = seconds[mmsk_name]
    print(f"\n{title}")
    header = (
        f"{'method':<48}{'wall s':>8}{'CPU s':>8}{unit + '/s':>11}{'mmsk/this':>11}{'by CPU':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, (wall, cpu) in seconds.items():
        label = name + ("  [baseline]" if name == baseline else "")
        print(
            f"{label:<48}{wall:>8.3f}{cpu:>8.3f}{n / wall:>11,.0f}"
            f"{wall / mmsk_wall:>11.2f}{cpu / mmsk_cpu:>8.2f}"
        )
    wall_ratio = seconds[baseline][0] / mmsk_wall
    cpu_ratio = seconds[baseline][1] / mmsk_cpu
    verdict = "met" if wall_ratio >= 1.0 else "NOT met"
    print(
        f"goal mmsk / {baseline} >= 1.00 (throughput): {wall_ratio:.2f} ({verdict}); "
        f"by CPU time {cpu_ratio:.2f}"
    )
    return wall_ratio, cpu_ratio


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=None, help="image files (default 2000)")
    parser.add_argument("--texts", type=int, default=None, help="sentences (default 50000)")
    parser.add_argument("--repeat", type=int, default=None, help="best of R runs (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, about 20 s")
    parser.add_argument("--data", type=Path, default=None, help="folder to keep the images in")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_images = args.images if args.images is not None else (200 if args.quick else 2000)
    n_texts = args.texts if args.texts is not None else (10000 if args.quick else 50000)
    repeat = max(1, args.repeat if args.repeat is not None else 3)

    import tensorflow as tf  # noqa: F401  (import cost kept out of every timing)

    print(versions())
    print(load_warning())
    print(f"best of {repeat} run(s) each, after one warm-up call")
    ratios: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mmsk-bench-") as tmp:
        if n_images > 0:
            root = args.data or Path(tmp) / "images"
            start = time.perf_counter()
            paths = make_images(root, n_images, args.seed)
            made = time.perf_counter() - start
            warm = make_images(Path(tmp) / "warmup", 2 * N_CLASSES, args.seed + 1)
            sizes = [Image.open(p).size for p in paths]
            n_png = sum(p.suffix == ".png" for p in paths)
            mb = sum(p.stat().st_size for p in paths) / 1e6
            print(
                f"\nimages: {len(paths)} files in {root} ({n_png} PNG, {len(paths) - n_png} "
                f"JPEG, {min(min(s) for s in sizes)}-{max(max(s) for s in sizes)} px, "
                f"{mb:.0f} MB; ready in {made:.1f} s)"
            )
            seconds = measure(image_methods(root), paths, warm, repeat)
            title = f"Images: files -> {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} RGB arrays"
            ratios["images"] = print_table(
                title, "images", len(paths), seconds, BASELINES["images"]
            )
        if n_texts > 0:
            texts = make_texts(n_texts, args.seed)
            words = sum(len(t.split()) for t in texts) / len(texts)
            print(f"\ntexts: {len(texts)} sentences, {words:.1f} words on average")
            seconds = measure(text_methods(), texts, texts[:500], repeat)
            title = (
                f"Texts: fit + transform, max_tokens={MAX_TOKENS}, "
                f"sequence_length={SEQUENCE_LENGTH}"
            )
            ratios["texts"] = print_table(title, "texts", len(texts), seconds, BASELINES["texts"])
    print(
        "\nsummary, mmsk/keras throughput: "
        + ", ".join(f"{k} {wall:.2f} (by CPU time {cpu:.2f})" for k, (wall, cpu) in ratios.items())
    )


if __name__ == "__main__":
    main()
