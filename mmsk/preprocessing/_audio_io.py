"""Decode one audio cell (path, bytes or array) to a mono float32 waveform of fixed length.

PCM WAV (8/16/24/32-bit) always decodes with the standard library's
:mod:`wave`, so results and errors (a truncated file) do not depend on what is
installed; the optional ``soundfile`` package decodes everything else (float
or extensible WAV, FLAC, OGG, MP3 where libsndfile supports it).
"""

from __future__ import annotations

import functools
import io
import math
import os
import wave
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from mmsk._config import get_config
from mmsk.exceptions import DecodeError, InputError, InputTypeError, MmskError
from mmsk.preprocessing._column import Column, as_column, read_file

NAME = "AudioFeaturizer"
MAX_CHANNELS = 8
_INSTALL_HINT = "install the optional decoder with `pip install 'mmsk[audio]'` (soundfile)"
_OTHER_MAGIC = {b"fLaC": "FLAC", b"OggS": "OGG", b"ID3": "MP3", b"\xff\xfb": "MP3"}


class _NotPCMError(InputError):
    """A WAV file the standard library cannot read (float, extensible)."""


@functools.lru_cache(maxsize=1)
def _soundfile() -> ModuleType | None:
    """The ``soundfile`` module, or None when it (or libsndfile) is missing."""
    try:
        import soundfile
    except (ImportError, OSError):
        return None
    return soundfile


def _pcm_to_float(raw: bytes, width: int, n_channels: int) -> np.ndarray:
    """Little-endian PCM bytes -> float32 (frames, channels) in [-1, 1)."""
    if width == 1:  # 8-bit WAV is unsigned
        a = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        a = np.frombuffer(raw, "<i2").astype(np.float32) / 2.0**15
    elif width == 3:  # place the 3 bytes in the top of an int32, keeping the sign
        b = np.zeros((len(raw) // 3, 4), np.uint8)
        b[:, 1:] = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        a = (b.view("<i4")[:, 0].astype(np.float64) / 2.0**31).astype(np.float32)
    elif width == 4:
        a = (np.frombuffer(raw, "<i4").astype(np.float64) / 2.0**31).astype(np.float32)
    else:
        raise DecodeError(f"unsupported WAV sample width of {width} bytes; expected 1 to 4")
    return a.reshape(-1, n_channels)


def input_frames(n_out: int, rate: int, target: int) -> int:
    """Input frames at ``rate`` that decide the first ``n_out`` samples at ``target`` Hz
    (with the resampling filter's half width)."""
    return -(-n_out * rate // target) + math.ceil(10 * max(rate, target) / target) + 1


def _read_wav(data: bytes, target: tuple[int, int] | None) -> tuple[np.ndarray, int]:
    """Decode PCM WAV bytes with the standard library (only the frames ``target`` needs)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            n_ch, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            declared = n_frames = w.getnframes()
            if target is not None and rate > 0:
                n_frames = min(n_frames, input_frames(target[1], rate, target[0]))
            raw = w.readframes(n_frames)
    except wave.Error as exc:
        if "unknown format" in str(exc):
            raise _NotPCMError(
                f"this WAV encoding is not integer PCM ({exc}); the standard library reads "
                f"8/16/24/32-bit PCM only. For float or extensible WAV, {_INSTALL_HINT}"
            ) from exc
        raise DecodeError(f"not a valid WAV file ({exc})") from exc
    except EOFError as exc:
        raise DecodeError("truncated WAV file: the header ends early") from exc
    if n_ch < 1 or rate < 1:
        raise DecodeError(f"invalid WAV header: {n_ch} channels at {rate} Hz")
    frame = n_ch * width
    if len(raw) < n_frames * frame:
        raise DecodeError(
            f"truncated WAV file: the header promises {declared} frames, "
            f"the data holds {len(raw) // frame}"
        )
    return _pcm_to_float(raw, width, n_ch), rate


def _read_soundfile(sf: ModuleType, data: bytes, target: tuple[int, int] | None) -> Any:
    """Decode with libsndfile, never more frames than ``target`` needs: a header that
    declares a huge length (or a file that decodes to far more than its size, as
    FLAC silence does) costs no more memory than the clip kept."""
    with sf.SoundFile(io.BytesIO(data)) as f:
        frames = -1 if target is None else input_frames(target[1], f.samplerate, target[0])
        if target is not None and frames * f.channels > get_config()["max_input_file_bytes"]:
            raise DecodeError(
                f"{f.channels} channels of {frames} frames would decode to more samples than "
                "max_input_file_bytes allows; expected an audio file of a few channels"
            )
        return f.read(frames, dtype="float32", always_2d=True), f.samplerate


def decode_bytes(data: bytes, target: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file's bytes to float32 ``(frames, channels)`` and its sample rate.

    ``target``: ``(sample_rate, n_samples)`` of the clip kept; only the frames
    that decide it are decoded.
    """
    sf = _soundfile()
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        try:
            return _read_wav(data, target)
        except _NotPCMError:
            if sf is None:
                raise
    if sf is not None:
        try:
            a, rate = _read_soundfile(sf, data, target)
        except MmskError:
            raise
        except Exception as exc:
            why = getattr(exc, "error_string", None) or str(exc)
            raise DecodeError(
                f"not an audio file libsndfile can read ({type(exc).__name__}: {why}); expected "
                "a WAV file or another format libsndfile reads (FLAC, OGG, MP3)"
            ) from exc
        return np.asarray(a, np.float32), int(rate)
    for magic, name in _OTHER_MAGIC.items():
        if data.startswith(magic):
            raise InputError(f"{name} audio needs soundfile: {_INSTALL_HINT}")
    raise DecodeError(
        f"not an audio file (starts with {data[:12]!r}); expected a WAV file "
        f"(or FLAC/OGG once you {_INSTALL_HINT})"
    )


def _array_to_float(a: np.ndarray) -> np.ndarray:
    """A waveform cell -> float32 ``(samples, channels)``; integers scale by 2**(bits-1)."""
    if a.dtype.kind == "c":
        raise InputError("Complex data not supported; expected a real-valued waveform")
    if a.dtype == object:
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(f"expected a numeric waveform array ({exc})") from exc
    if a.dtype.kind not in "fiu":
        raise InputTypeError(f"expected a numeric waveform array. Received dtype {a.dtype}")
    if a.ndim == 1:
        a = a[:, None]
    elif a.ndim != 2 or not 1 <= a.shape[1] <= MAX_CHANNELS:
        hint = " (channels first? pass arr.T)" if a.ndim == 2 and a.shape[0] <= 8 else ""
        raise InputError(
            "expected a 1-D waveform or a (samples, channels) array with at most "
            f"{MAX_CHANNELS} channels. Received an array of shape {a.shape}{hint}"
        )
    if a.dtype.kind == "i":
        out = a.astype(np.float64) / float(-np.iinfo(a.dtype).min)
    elif a.dtype.kind == "u":
        mid = (float(np.iinfo(a.dtype).max) + 1.0) / 2.0
        out = (a.astype(np.float64) - mid) / mid
    else:
        out = a
    out = np.asarray(out, np.float32)
    if not np.isfinite(out).all():
        raise InputError("the waveform contains NaN or inf values; expected finite samples")
    return out


def resample(x: np.ndarray, rate: int, target: int, n_out: int) -> np.ndarray:
    """Resample 1-D ``x`` from ``rate`` to ``target`` Hz, keeping the first ``n_out`` samples."""
    if rate == target:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    up, down = target // g, rate // g
    # Only the input that reaches the first n_out outputs (plus the filter's half width).
    return resample_poly(x[: input_frames(n_out, rate, target)], up, down).astype(np.float32)


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Crop ``x`` from the start, or pad it with zeros at the end, to ``n`` samples."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros(n - len(x), np.float32)])


def decode_cell(cell: Any, sample_rate: int, n_samples: int) -> np.ndarray:
    """One present cell -> float32 mono waveform of ``n_samples`` at ``sample_rate``.

    Arrays are taken to be sampled at ``sample_rate`` already; files are
    resampled from their own rate.
    """
    if isinstance(cell, (str, os.PathLike)):
        data = read_file(cell, "audio")
        try:
            frames, rate = decode_bytes(data, (sample_rate, n_samples))
        except MmskError as exc:
            raise type(exc)(f"{os.fspath(cell)!r}: {exc}") from exc
        what = f"{os.fspath(cell)!r} holds 0 audio frames"
    elif isinstance(cell, (bytes, bytearray, memoryview)):
        if len(cell) == 0:
            raise InputError("empty bytes (0 bytes); expected the bytes of an audio file")
        frames, rate = decode_bytes(bytes(cell), (sample_rate, n_samples))
        what = "the audio bytes hold 0 frames"
    elif isinstance(cell, (np.ndarray, list, tuple)):
        frames, rate = _array_to_float(np.asarray(cell)), sample_rate
        what = "the waveform is empty"
    else:
        raise InputTypeError(
            "expected a path to an audio file, the bytes of one, or a numeric waveform "
            f"array. Received: {type(cell).__name__}"
        )
    if frames.shape[0] == 0:
        raise InputError(f"{what}; expected at least one sample")
    mono = frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]
    return fit_length(resample(mono, rate, sample_rate, n_samples), n_samples)


def audio_column(X: Any) -> Column:
    """Cells of X; a 2-D numeric array is N waveforms of S samples."""
    if sparse.issparse(X):
        raise InputTypeError(f"{NAME} does not accept sparse input; pass a dense array")
    if not isinstance(X, (pd.Series, pd.DataFrame, list, tuple)) and hasattr(X, "__array__"):
        X = np.asarray(X)
    if isinstance(X, np.ndarray) and X.ndim == 2 and not (X.dtype == object and X.shape[1] == 1):
        if X.dtype.kind == "c":
            raise InputError("Complex data not supported; expected real-valued waveforms")
        if X.dtype == object:
            X = X.astype(np.float64)  # TypeError for cells that are not numbers
        if X.shape[0] and X.shape[1] == 0:
            raise InputError(
                f"{NAME} received 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
                "required: expected at least one sample per waveform"
            )
        return Column(list(X), "X", range(len(X)))
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "biufc":
        raise InputError(
            f"{NAME} received a 1-D numeric array of shape {X.shape}: expected a column of "
            "cells or a 2-D (n_clips, n_samples) array. Reshape your data: pass [wave] for one "
            "waveform"
        )
    return as_column(X, NAME)
