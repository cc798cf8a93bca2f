"""Audio column -> log-mel spectrograms, MFCCs or padded waveforms: :class:`AudioFeaturizer`."""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from mmsk._backend import tf
from mmsk._batch import ModalitySpec
from mmsk.exceptions import InputError, ParameterError
from mmsk.preprocessing._audio_io import NAME, audio_column, decode_cell, decode_frames
from mmsk.preprocessing._column import Column, check_not_empty, parallel_map
from mmsk.preprocessing._single import OneColumnTransformer

if TYPE_CHECKING:
    from typing_extensions import Self

_CHUNK = 512  # rows decoded and featurized at a time, so memory stays bounded
MAX_AUTO_DURATION = 30.0  # seconds: the longest duration=None picks from the data


def _seconds(cell: Any, sample_rate: int) -> float:
    """A present cell's length in seconds (arrays are at ``sample_rate``), at most the cap."""
    if isinstance(cell, (np.ndarray, list, tuple)):
        return len(cell) / sample_rate
    frames, rate = decode_frames(cell, sample_rate, round(MAX_AUTO_DURATION * sample_rate))
    return min(frames.shape[0] / rate, MAX_AUTO_DURATION)


class AudioFeaturizer(  # type: ignore[call-arg]
    OneColumnTransformer,
    auto_wrap_output_keys=None,  # no set_output: a 3-D output cannot be a DataFrame
):
    """Turn a column of audio into fixed-size log-mel spectrograms, MFCCs or waveforms.

    Each cell is decoded to mono, resampled to ``sample_rate``, padded with
    zeros or cropped (from the start) to ``duration`` seconds, and turned into
    features with :mod:`tf.signal` in batches.  Missing cells (None/NaN) give
    all-zero rows; read them through the presence mask.

    Parameters
    ----------
    sample_rate : int, default=16000
        Rate in Hz every clip is resampled to; array cells are taken to be at
        this rate already.
    duration : float or None, default=None
        Seconds kept per clip (shorter clips are padded with silence, longer
        ones cropped).  None takes it from the data in ``fit``: the 95th
        percentile of the clips' lengths, at most 30 s (``duration_``), so
        that short clips are not drowned in padding.
    features : {"log_mel", "mfcc", "waveform"}, default="log_mel"
        ``"log_mel"``: ``log(mel + 1e-6)`` of the STFT magnitude, shape
        ``(T, n_mels)``; ``"mfcc"``: the ``n_mels`` MFCCs of that, same shape;
        ``"waveform"``: the padded samples, shape ``(sample_rate * duration, 1)``.
    n_mels : int, default=40
        Mel bands.
    frame_length, frame_step : float, default=0.025, 0.010
        STFT window and hop in seconds (a Hann window; FFT size is the next
        power of two).
    fmin, fmax : float, default=0.0, None
        Mel filterbank edges in Hz; ``fmax=None`` means ``sample_rate / 2``.
    normalize : bool, default=True
        Standardize each feature bin (mel band, coefficient) with the mean and
        standard deviation over the time frames of the rows seen in ``fit``.
    n_jobs : int or None, default=None
        Threads decoding files; None or -1 picks a few per core.

    Attributes
    ----------
    spec_ : ModalitySpec
        ``ModalitySpec("audio", (T, M), "float32")`` of one output row.
    duration_ : float
        Seconds kept per clip: ``duration``, or the one chosen from the data.
    n_samples_ : int
        Samples per clip after padding/cropping.
    n_frames_ : int
        Time steps T of one output row.
    mean_, scale_ : ndarray of shape (M,) or None
        Per-bin statistics used when ``normalize=True``.
    n_features_in_ : int
        1 for a column of cells; S for a 2-D ``(N, S)`` waveform array.
    feature_names_in_ : ndarray of str
        The column's name, when ``fit`` got a one-column DataFrame or a named Series.

    Notes
    -----
    Cells may be file paths (WAV, integer PCM or float, with SciPy; FLAC, OGG,
    MP3 and other WAV encodings need ``pip install 'mmsk[audio]'``), the bytes of a file, or
    numeric arrays: 1-D, or ``(samples, channels)`` with at most 8 channels.
    Float arrays are expected in [-1, 1]; integer arrays are scaled by
    ``2 ** (bits - 1)`` (unsigned ones centred first), as in WAV files.
    Several channels are averaged.  Waveforms of any length are accepted.

    Examples
    --------
    >>> import numpy as np
    >>> from mmsk.preprocessing import AudioFeaturizer
    >>> t = np.arange(8000) / 8000
    >>> clips = [np.sin(2 * np.pi * 440 * t), None, np.zeros(4000)]
    >>> featurizer = AudioFeaturizer(sample_rate=8000, duration=1.0, n_mels=20)
    >>> out = featurizer.fit_transform(clips)
    >>> out.shape, out.dtype
    ((3, 98, 20), dtype('float32'))
    >>> featurizer.spec_.shape
    (98, 20)
    >>> bool((out[1] == 0).all())  # the missing clip
    True
    """

    _parameter_constraints: dict = {
        "sample_rate": [Interval(Integral, 1, None, closed="left")],
        "duration": [Interval(Real, 0, None, closed="neither"), None],
        "features": [StrOptions({"log_mel", "mfcc", "waveform"})],
        "n_mels": [Interval(Integral, 1, None, closed="left")],
        "frame_length": [Interval(Real, 0, None, closed="neither")],
        "frame_step": [Interval(Real, 0, None, closed="neither")],
        "fmin": [Interval(Real, 0, None, closed="left")],
        "fmax": [Interval(Real, 0, None, closed="neither"), None],
        "normalize": ["boolean"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        sample_rate: int = 16000,
        duration: float | None = None,
        features: str = "log_mel",
        n_mels: int = 40,
        frame_length: float = 0.025,
        frame_step: float = 0.010,
        fmin: float = 0.0,
        fmax: float | None = None,
        normalize: bool = True,
        n_jobs: int | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.duration = duration
        self.features = features
        self.n_mels = n_mels
        self.frame_length = frame_length
        self.frame_step = frame_step
        self.fmin = fmin
        self.fmax = fmax
        self.normalize = normalize
        self.n_jobs = n_jobs

    _unnamed = "audio"

    def _geometry(self, duration: float | None = None) -> tuple[int, int, int]:
        """Check the settings together; return (n_samples, frame samples, hop samples)."""
        sr, length, step = (
            self._setting(k) for k in ("sample_rate", "frame_length", "frame_step")
        )
        if duration is None:  # the fitted one, else (before fit, duration=None) one frame
            duration = getattr(self, "duration_", self._setting("duration")) or length
        n = max(1, round(duration * sr))
        win, hop = round(length * sr), round(step * sr)
        if self._setting("features") == "waveform":
            return n, win, hop
        if win < 2 or hop < 1:
            raise ParameterError(
                "Expected frame_length of at least 2 samples and frame_step of at least 1. "
                f"Received: frame_length={length}, frame_step={step} at sample_rate={sr}"
            )
        if win > n:
            raise ParameterError(
                "Expected duration >= frame_length. "
                f"Received: duration={duration}, frame_length={length}"
            )
        fmin, fmax = self._setting("fmin"), self._setting("fmax")
        if not fmin < (sr / 2 if fmax is None else fmax) <= sr / 2:
            raise ParameterError(
                f"Expected 0 <= fmin < fmax <= sample_rate / 2 = {sr / 2}. "
                f"Received: fmin={fmin}, fmax={fmax}"
            )
        return n, win, hop

    def _auto_duration(self, column: Column) -> float:
        """``duration=None``: the 95th percentile of the present clips' lengths (1 s if none)."""
        rows = [i for i in range(len(column)) if column.present[i]]
        sr = self.sample_rate
        seconds = parallel_map(lambda c: _seconds(c, sr), column, rows, self.n_jobs)
        if not seconds:
            return 1.0
        return float(max(np.percentile(seconds, 95), self.frame_length))

    def _featurize(self, waves: np.ndarray) -> np.ndarray:
        """(n, S) float32 waveforms -> (n, T, M) float32 features."""
        if self._setting("features") == "waveform":
            return waves[:, :, None]
        return np.asarray(self.features_graph(tf().constant(waves)).numpy(), np.float32)

    def features_graph(self, waves: Any) -> Any:
        """The features of a float32 tensor (n, S) of waveforms, as TensorFlow ops.

        What :meth:`transform` computes after decoding (before normalising), usable
        inside a ``tf.function``; :func:`mmsk.export` builds its audio input with it.

        Examples
        --------
        >>> import numpy as np, tensorflow as tf
        >>> featurizer = AudioFeaturizer(sample_rate=8000, n_mels=20).fit([np.zeros(8000)])
        >>> featurizer.features_graph(tf.zeros((2, 8000))).shape
        TensorShape([2, 98, 20])
        """
        tf_ = tf()
        features = self._setting("features")
        if features == "waveform":
            return waves[:, :, None]
        _, win, hop = self._geometry()
        sr, fmax = self._setting("sample_rate"), self._setting("fmax")
        fft = 1 << (win - 1).bit_length()
        stft = tf_.signal.stft(waves, win, hop, fft_length=fft)
        mel_matrix = tf_.signal.linear_to_mel_weight_matrix(
            self._setting("n_mels"),
            fft // 2 + 1,
            sr,
            float(self._setting("fmin")),
            float(sr / 2 if fmax is None else fmax),
        )
        mel = tf_.tensordot(tf_.abs(stft), mel_matrix, 1)
        out = tf_.math.log(mel + 1e-6)
        if features == "mfcc":
            out = tf_.signal.mfccs_from_log_mel_spectrograms(out)
        return out

    def _chunks(self, column: Column) -> Any:
        """Yield (present row indices, features of those rows), _CHUNK rows at a time."""
        present = column.present
        sr, jobs = self._setting("sample_rate"), self._setting("n_jobs")
        n = round(getattr(self, "duration_", self._setting("duration")) * sr)
        for start in range(0, len(column), _CHUNK):
            rows = [i for i in range(start, min(start + _CHUNK, len(column))) if present[i]]
            if rows:
                waves = parallel_map(lambda c: decode_cell(c, sr, n), column, rows, jobs)
                yield rows, self._featurize(np.stack(waves))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> Self:
        """Check the settings and learn the output shape and per-bin statistics.

        Parameters
        ----------
        X : Series, one-column DataFrame, list of cells, or ndarray of shape (N, S)
            Audio paths, bytes or waveforms; None/NaN marks a missing clip.
        y : None
            Ignored.

        Returns
        -------
        self : AudioFeaturizer
        """
        column = audio_column(X)
        check_not_empty(column, NAME)
        self._fit_column(X, column)
        self.__dict__.pop("duration_", None)  # a refit chooses again
        if self.duration is not None:
            self._geometry(self.duration)  # wrong settings fail before any decoding
        self.duration_ = self._auto_duration(column) if self.duration is None else self.duration
        n, win, hop = self._geometry(self.duration_)
        if self.features == "waveform":
            shape: tuple[int, int] = (n, 1)
        else:
            shape = (1 + (n - win) // hop, self.n_mels)
        self.mean_: np.ndarray | None
        self.scale_: np.ndarray | None
        if self.normalize:
            count, mean, m2 = 0, np.zeros(shape[1]), np.zeros(shape[1])
            for _, feats in self._chunks(column):  # Chan et al.'s merge of (count, mean, M2)
                x = feats.reshape(-1, shape[1]).astype(np.float64)
                b_mean = x.mean(axis=0)
                delta, total = b_mean - mean, count + len(x)
                mean = mean + delta * len(x) / total
                m2 = m2 + ((x - b_mean) ** 2).sum(axis=0) + delta**2 * count * len(x) / total
                count = total
            if count == 0:
                raise InputError(
                    f"every cell of column {column.name!r} is missing; expected at least one "
                    "clip to learn the normalisation from (or pass normalize=False)"
                )
            std = np.sqrt(m2 / count)
            self.mean_ = mean.astype(np.float32)
            self.scale_ = np.where(std < 1e-12, 1.0, std).astype(np.float32)
        else:
            self.mean_, self.scale_ = None, None
        if isinstance(X, np.ndarray) and X.ndim == 2:
            self.n_features_in_ = X.shape[1]
        self.n_samples_ = n
        self.n_frames_ = shape[0]
        named = isinstance(X, (pd.Series, pd.DataFrame))  # else the name is a placeholder
        self.spec_ = ModalitySpec(
            "audio", shape, "float32", columns=(column.name,) if named else ()
        )
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Featurize every clip; missing ones give all-zero rows.

        Parameters
        ----------
        X : Series, one-column DataFrame, list of cells, or ndarray of shape (N, S)
            As in :meth:`fit`; clips of any length.

        Returns
        -------
        ndarray of shape (N, T, M), float32
        """
        check_is_fitted(self, "spec_")
        column = audio_column(X)
        check_not_empty(column, NAME)
        out = np.zeros((len(column), *self.spec_.shape), np.float32)
        for rows, feats in self._chunks(column):
            if self.mean_ is not None:
                feats = (feats - self.mean_) / self.scale_
            out[rows] = feats
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of one output row flattened in C order: ``<column>_t{t}_m{m}``.

        ``m`` is the mel band (``_c`` for MFCC coefficients); waveform output
        names samples ``<column>_s{i}``.  The prefix is the fitted column's
        name (``"audio"`` if it had none); ``input_features``, if given, must
        be that one column.
        """
        prefix = self._output_prefix(input_features)
        t, m = self.spec_.shape
        features = self._setting("features")
        if features == "waveform":
            return np.asarray([f"{prefix}_s{i}" for i in range(t)], dtype=object)
        bin_ = "c" if features == "mfcc" else "m"
        return np.asarray(
            [f"{prefix}_t{i}_{bin_}{j}" for i in range(t) for j in range(m)], dtype=object
        )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # output is always float32
        return tags
