"""Decode one audio cell (path, bytes or array) to a mono float32 waveform of fixed length.

WAV files (integer PCM of 8 to 64 bits, 32/64-bit float, extensible) always
decode with :mod:`scipy.io.wavfile`, so results and errors (a truncated file)
do not depend on what is installed; the optional ``soundfile`` package decodes
other formats (FLAC, OGG, MP3 where libsndfile supports it) and WAV encodings
scipy does not read (such as µ-law).  A file neither reads gets one message,
whichever is installed.
"""

from __future__ import annotations

import functools
import io
import math
import os
import struct
import warnings
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.io import wavfile

from mmsk._config import get_config
from mmsk.exceptions import DecodeError, InputError, InputTypeError, MmskError
from mmsk.preprocessing._column import Column, as_column, read_file

NAME = "AudioFeaturizer"
MAX_CHANNELS = 8
_INSTALL_HINT = "install the optional decoder with `pip install 'mmsk[audio]'` (soundfile)"
_OTHER_MAGIC = {b"fLaC": "FLAC", b"OggS": "OGG", b"ID3": "MP3", b"\xff\xfb": "MP3"}
_RIFF = {b"RIFF": "little", b"RIFX": "big"}  # RF64 keeps its real size elsewhere
# What scipy.io.wavfile raises for a file it cannot read (the last two: no fmt/data chunk,
# 0 channels in the header).
_WAV_ERRORS = (ValueError, struct.error, EOFError, ZeroDivisionError, UnboundLocalError)


@functools.lru_cache(maxsize=1)
def _soundfile() -> ModuleType | None:
    """The ``soundfile`` module, or None when it (or libsndfile) is missing."""
    try:
        import soundfile
    except (ImportError, OSError):
        return None
    return soundfile


def input_frames(n_out: int, rate: int, target: int) -> int:
    """Input frames at ``rate`` that decide the first ``n_out`` samples at ``target`` Hz
    (with the resampling filter's half width)."""
    return -(-n_out * rate // target) + math.ceil(10 * max(rate, target) / target) + 1


def _check_data_chunk(data: bytes) -> None:
    """A truncated file: the data chunk promises more bytes than the file holds.

    (scipy would return the frames there are, with only a warning.)
    """
    order = _RIFF.get(data[:4])
    pos = 12
    while order is not None and pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], order)  # type: ignore[arg-type]
        if data[pos : pos + 4] == b"data":
            if pos + 8 + size > len(data):
                raise DecodeError(
                    f"truncated WAV file: the header promises {size} bytes of samples, the "
                    f"file holds {len(data) - pos - 8}"
                )
            return
        pos += 8 + size + (size & 1)  # chunks are padded to an even length


def _read_wav(data: bytes, target: tuple[int, int] | None) -> tuple[np.ndarray, int]:
    """Decode WAV bytes with scipy (only the frames ``target`` needs become float)."""
    _check_data_chunk(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", wavfile.WavFileWarning)  # chunks it skips (metadata)
        rate, a = wavfile.read(io.BytesIO(data))
    if rate < 1:
        raise DecodeError(f"invalid WAV header: a sample rate of {rate} Hz")
    a = a[:, None] if a.ndim == 1 else a
    if target is not None:
        a = a[: input_frames(target[1], rate, target[0])]
    return to_float(a), int(rate)


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
        a = f.read(frames, dtype="float32", always_2d=True)
        return np.asarray(a, np.float32), int(f.samplerate)


def decode_bytes(data: bytes, target: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file's bytes to float32 ``(frames, channels)`` and its sample rate.

    ``target``: ``(sample_rate, n_samples)`` of the clip kept; only the frames
    that decide it are decoded.
    """
    sf = _soundfile()
    if data[:4] in (*_RIFF, b"RF64") and data[8:12] == b"WAVE":
        try:
            return _read_wav(data, target)
        except MmskError:  # a ValueError too, but already clear (a truncated file)
            raise
        except _WAV_ERRORS as exc:
            if sf is not None:  # an encoding libsndfile may read (mu-law, ADPCM)
                try:
                    return _read_soundfile(sf, data, target)
                except sf.SoundFileError:
                    pass
            raise DecodeError(
                f"not a WAV file mmsk can read ({type(exc).__name__}: {exc}); expected integer "
                f"PCM or float samples (other encodings need soundfile: {_INSTALL_HINT})"
            ) from exc
    name = next((n for magic, n in _OTHER_MAGIC.items() if data.startswith(magic)), None)
    if sf is not None:
        try:
            return _read_soundfile(sf, data, target)
        except sf.SoundFileError as exc:
            if name is not None:  # only libsndfile reads it, so its reason is the one to give
                raise DecodeError(f"not a valid {name} file ({exc})") from exc
    elif name is not None:
        raise InputError(f"{name} audio needs soundfile: {_INSTALL_HINT}")
    raise DecodeError(
        f"not an audio file (starts with {data[:12]!r}); expected a WAV file, or FLAC, OGG or "
        f"MP3 with soundfile ({_INSTALL_HINT})"
    )


def to_float(a: np.ndarray) -> np.ndarray:
    """Samples -> float32 in [-1, 1]: integers scale by 2**(bits-1), unsigned ones centred
    first (as in WAV files); float samples are kept, and must be finite."""
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
    return to_float(a)


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


def decode_frames(cell: Any, sample_rate: int, n_samples: int) -> tuple[np.ndarray, int]:
    """One present cell -> float32 ``(frames, channels)`` and its rate, at least one frame.

    Arrays are taken to be at ``sample_rate``; files are decoded only as far as
    the first ``n_samples`` at ``sample_rate`` need.  Errors name the file.
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
    return frames, rate


def decode_cell(cell: Any, sample_rate: int, n_samples: int) -> np.ndarray:
    """One present cell -> float32 mono waveform of ``n_samples`` at ``sample_rate``.

    Arrays are taken to be sampled at ``sample_rate`` already; files are
    resampled from their own rate.
    """
    frames, rate = decode_frames(cell, sample_rate, n_samples)
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
