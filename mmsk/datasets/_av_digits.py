"""``load_av_digits``: handwritten digits paired with spoken ones (image + audio)."""

from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import Any

import numpy as np

from mmsk.datasets._base import (
    data_version,
    extract,
    frame_or_arrays,
    get_data_home,
    load_arrays,
    load_descr,
)

_FILE = "av_digits.npz"
SAMPLE_RATE = 8000
N_SAMPLES = SAMPLE_RATE  # every clip is one second long
# The corruption that makes ``noisy=True`` (fixed: it is part of the data set's definition).
_NOISE_SEED = 1797
_PIXEL_NOISE = 0.15  # standard deviation of Gaussian noise on [0, 1] pixels
_PATCH = 3  # side of the square of pixels painted one random grey
_SNR_DB = (0.0, 15.0)  # signal-to-noise ratio of the added white noise, drawn per clip


def _mu_law_decode(codes: np.ndarray, mu: int = 255) -> np.ndarray:
    y = codes.astype(np.float32) * (2.0 / mu) - 1.0
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


def _clean(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (N, 8, 8) uint8, clips (N, 8000) float32 starting at 0, clip lengths)."""
    offsets = arrays["offsets"]
    lengths = np.diff(offsets)
    samples = _mu_law_decode(arrays["audio"])
    clips = np.zeros((len(lengths), N_SAMPLES), np.float32)
    for i, (start, n) in enumerate(zip(offsets[:-1], lengths, strict=True)):
        clips[i, :n] = samples[start : start + n]
    return arrays["images"], clips, lengths


def _corrupt(
    images: np.ndarray, clips: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The seeded corruption of ``noisy=True`` (see the data set's DESCR)."""
    rng = np.random.default_rng(_NOISE_SEED)
    n, h, w = images.shape
    pixels = images / 255.0 + rng.normal(0.0, _PIXEL_NOISE, images.shape)
    rows = rng.integers(0, h - _PATCH + 1, n)
    cols = rng.integers(0, w - _PATCH + 1, n)
    levels = np.asarray(rng.random(n))
    for i in range(n):
        pixels[i, rows[i] : rows[i] + _PATCH, cols[i] : cols[i] + _PATCH] = levels[i]
    noisy_images = np.round(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)

    starts = rng.integers(0, N_SAMPLES - lengths + 1)
    snr = np.asarray(rng.uniform(*_SNR_DB, n))
    noise = rng.standard_normal((n, N_SAMPLES), dtype=np.float32)
    audio = np.empty_like(clips)
    for i in range(n):
        word = clips[i, : lengths[i]]
        rms = float(np.sqrt(np.mean(word.astype(np.float64) ** 2)))
        audio[i] = noise[i] * (rms * 10.0 ** (-snr[i] / 20.0))
        audio[i, starts[i] : starts[i] + lengths[i]] += word
    return noisy_images, np.clip(audio, -1.0, 1.0)


def _write_files(folder: Path, images: np.ndarray, audio: np.ndarray) -> None:
    from PIL import Image

    (folder / "images").mkdir()
    (folder / "audio").mkdir()
    pcm = np.round(audio * 32767).astype("<i2")
    for i, (img, clip) in enumerate(zip(images, pcm, strict=True)):
        Image.fromarray(img, mode="L").save(folder / "images" / f"{i:04d}.png")
        with wave.open(str(folder / "audio" / f"{i:04d}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(clip.tobytes())


def load_av_digits(
    *,
    as_frame: bool = True,
    return_X_y: bool = False,
    noisy: bool = True,
    as_paths: bool = False,
    data_home: str | os.PathLike[str] | None = None,
) -> Any:
    """Load the audio-visual digits: a handwritten digit and the spoken word, per row.

    1,797 rows, 10 classes (0-9), two modalities.  ``image``: scikit-learn's
    8x8 handwritten digits (:func:`sklearn.datasets.load_digits`) as uint8
    (0-255).  ``audio``: the digit's English word ("zero" .. "nine") spoken by
    the eSpeak NG synthesiser in a voice drawn per row (8 accents, ~100 voice
    variants, speeds and pitches), one second of mono float32 at 8 kHz.

    With ``noisy=True`` (the default) both modalities are corrupted as in the
    AV-MNIST benchmark, so that neither alone is enough: pixel noise and a
    random grey 3x3 patch on each image; white noise at 0-15 dB SNR and a
    random start time on each clip.  The corruption is seeded and fixed.
    Fusing the two beats the best single modality; see ``DESCR``.

    =================  ==============================================
    Classes            10 (``target`` 0-9; the word in ``words``)
    Rows               1797 (about 180 per class)
    ``image``          uint8 (8, 8) grayscale arrays, or PNG paths
    ``audio``          float32 (8000,) arrays at 8 kHz, or WAV paths
    =================  ==============================================

    Parameters
    ----------
    as_frame : bool, default=True
        ``data`` as a DataFrame with object columns ``image`` and ``audio``,
        ``target`` as a Series and ``frame`` both together.  If False,
        ``data`` is a 2-D object array of the same cells (mmsk reads its
        columns as ``x0``, ``x1``) and ``frame`` is None.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of the Bunch.
    noisy : bool, default=True
        Apply the fixed corruption described above; False gives the clean
        images and clips (each word starting at time 0, zero-padded).
    as_paths : bool, default=False
        Make the ``image`` and ``audio`` cells file paths (PNG, 16-bit PCM
        WAV) instead of arrays.  The files are written once into
        ``data_home`` and reused.
    data_home : str or path-like, optional
        Folder for ``as_paths`` files; see :func:`get_data_home`.

    Returns
    -------
    Bunch or tuple
        ``data``, ``target``, ``frame``, ``feature_names``, ``target_names``
        (``array([0, ..., 9])``), ``words`` (the spoken word of each class),
        ``images`` (uint8 (1797, 8, 8)), ``audio`` (float32 (1797, 8000)),
        ``sample_rate`` (8000), ``speakers`` (a DataFrame of each clip's
        eSpeak NG accent, variant, speed and pitch) and ``DESCR``.

    Examples
    --------
    >>> from mmsk.datasets import load_av_digits
    >>> digits = load_av_digits()
    >>> digits.data.shape, list(digits.data.columns)
    ((1797, 2), ['image', 'audio'])
    >>> digits.data["image"][0].shape, digits.data["audio"][0].shape, digits.sample_rate
    ((8, 8), (8000,), 8000)
    >>> int(digits.target[0]), str(digits.words[digits.target[0]])
    (0, 'zero')
    """
    import pandas as pd
    from sklearn.utils import Bunch

    arrays = load_arrays(_FILE)
    images, audio, lengths = _clean(arrays)
    if noisy:
        images, audio = _corrupt(images, audio, lengths)
    target = arrays["target"].astype(np.int64)
    columns: dict[str, Any] = {"image": list(images), "audio": list(audio)}
    if as_paths:
        kind = "noisy" if noisy else "clean"
        folder = get_data_home(data_home) / f"av_digits-{kind}-{data_version(_FILE)}"
        extract(folder, lambda tmp: _write_files(tmp, images, audio))
        n = len(target)
        columns = {
            "image": [str(folder / "images" / f"{i:04d}.png") for i in range(n)],
            "audio": [str(folder / "audio" / f"{i:04d}.wav") for i in range(n)],
        }
    parts = frame_or_arrays(columns, target, "digit", as_frame=as_frame)
    if return_X_y:
        return parts["data"], parts["target"]
    speakers = pd.DataFrame(
        {
            "accent": arrays["accent_names"][arrays["accent"]],
            "variant": arrays["variant_names"][arrays["variant"]],
            "speed_wpm": arrays["speed"].astype(np.int64),
            "pitch": arrays["pitch"].astype(np.int64),
        }
    )
    return Bunch(
        **parts,
        target_names=np.arange(10),
        words=arrays["words"],
        images=images,
        audio=audio,
        sample_rate=SAMPLE_RATE,
        speakers=speakers,
        DESCR=load_descr("av_digits.rst"),
    )
