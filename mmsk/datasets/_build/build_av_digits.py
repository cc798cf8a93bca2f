"""Rebuild ``mmsk/datasets/data/av_digits.npz``: handwritten digits paired with spoken ones.

Not imported by mmsk; run it by hand to check or refresh the shipped file::

    apt-get install espeak-ng          # Debian 12: espeak-ng 1.51+dfsg-10+deb12u2
    pip install "scikit-learn==1.9.1" "numpy>=2" "scipy>=1.11"
    python mmsk/datasets/_build/build_av_digits.py [--out PATH]

Sources, both public and both written by others:

* the images are scikit-learn's bundled copy of the UCI "Optical Recognition
  of Handwritten Digits" test set (``sklearn.datasets.load_digits``: 1,797
  images of 8x8 pixels, levels 0-16, CC BY 4.0), rescaled to 0-255 uint8;
* each image gets a spoken English word for its digit ("zero" .. "nine")
  synthesised by the eSpeak NG speech synthesiser (GPL-3.0-or-later) with a
  voice drawn for that row: one of eight English accents, one of eSpeak NG's
  voice variants (``espeak-ng-data/voices/!v``), a speed of 100-239 words per
  minute and a pitch of 10-89.  The clip is resampled to 8 kHz, trimmed of
  leading and trailing silence, peak-normalised and stored as 8-bit mu-law.

The result is deterministic: every draw comes from ``numpy.random.default_rng(SEED)``
in row order, and eSpeak NG's output for fixed arguments does not vary.
The file stores clean data; ``load_av_digits(noisy=True)`` adds the seeded
corruption at load time (see ``mmsk/datasets/_av_digits.py``).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _npz import save_npz  # this folder is sys.path[0] when run as a script
from scipy.signal import resample_poly
from sklearn.datasets import load_digits

SEED = 20240604
RATE = 8000
MAX_SECONDS = 1.0
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
VARIANTS_DIR = Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v")
OUT = Path(__file__).resolve().parents[1] / "data" / "av_digits.npz"


def variants() -> list[str]:
    """eSpeak NG's voice variants, by file name, sorted (the draw depends on this order)."""
    found = sorted(p.name for p in VARIANTS_DIR.iterdir() if p.is_file())
    if not found:
        raise SystemExit(f"no eSpeak NG variants in {VARIANTS_DIR}; apt-get install espeak-ng")
    return found


def synthesise(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """Speak ``word``; return float32 mono samples at 8 kHz, trimmed and normalised."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(wav), "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768.0
    g = np.gcd(RATE, rate)
    x = resample_poly(x, RATE // g, rate // g)
    loud = np.flatnonzero(np.abs(x) > 0.05 * np.abs(x).max())
    margin = int(0.02 * RATE)
    x = x[max(0, loud[0] - margin) : loud[-1] + margin][: int(MAX_SECONDS * RATE)]
    return (0.9 * x / np.abs(x).max()).astype(np.float32)


def mu_law(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """[-1, 1] floats -> uint8 mu-law codes (decoded by ``mmsk.datasets._av_digits``)."""
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.clip(np.round((y + 1) / 2 * mu), 0, mu).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    target = digits.target.astype(np.uint8)
    names = variants()
    rng = np.random.default_rng(SEED)
    n = len(target)
    accent = rng.integers(0, len(ACCENTS), n)
    variant = rng.integers(0, len(names), n)
    speed = rng.integers(100, 240, n)
    pitch = rng.integers(10, 90, n)

    def one(i: int) -> np.ndarray:
        voice = f"{ACCENTS[accent[i]]}+{names[variant[i]]}"
        return synthesise(WORDS[target[i]], voice, int(speed[i]), int(pitch[i]))

    with ThreadPoolExecutor(4) as pool:
        clips = list(pool.map(one, range(n)))
    lengths = np.array([len(c) for c in clips])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    save_npz(
        args.out,
        {
            "images": images,
            "target": target,
            "audio": mu_law(np.concatenate(clips)),
            "offsets": offsets,
            "accent": accent.astype(np.uint8),
            "variant": variant.astype(np.uint8),
            "speed": speed.astype(np.uint16),
            "pitch": pitch.astype(np.uint8),
            "accent_names": np.array(ACCENTS),
            "variant_names": np.array(names),
            "words": np.array(WORDS),
            "sample_rate": np.array(RATE),
        },
    )
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {n} rows, clips "
        f"{lengths.min() / RATE:.2f}-{lengths.max() / RATE:.2f} s "
        f"(mean {lengths.mean() / RATE:.2f} s)"
    )


if __name__ == "__main__":
    main()
