"""Tests of AudioFeaturizer: decoding, features, missing cells, errors, sklearn API."""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from mmsk._batch import ModalitySpec
from mmsk.exceptions import DecodeError, InputError, InputTypeError
from mmsk.preprocessing import _audio, _audio_io
from mmsk.preprocessing._audio import AudioFeaturizer

SR = 16000


def tone(freq: float, rate: int, seconds: float = 0.5, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(round(rate * seconds)) / rate)


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int = 2) -> Path:
    """Write float samples in [-1, 1] ((S,) or (S, channels)) as PCM with the stdlib."""
    s = np.asarray(samples, float)
    s = s[:, None] if s.ndim == 1 else s
    if width == 1:
        raw = np.round(s * 127 + 128).astype("<u1").tobytes()
    elif width == 2:
        raw = np.round(s * 32767).astype("<i2").tobytes()
    else:
        ints = np.round(s * (2.0 ** (8 * width - 1) - 1)).astype("<i4")
        raw = ints.reshape(-1).view("<u1").reshape(-1, 4)[:, :width].tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(s.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def float_wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A 32-bit float WAV (format tag 3), which the stdlib `wave` cannot read."""
    return _wav_bytes(3, 4, np.asarray(samples, "<f4").tobytes(), rate)


def mulaw_wav_bytes(n: int, rate: int) -> bytes:
    """A mu-law WAV (format tag 7) of n silent frames: scipy cannot read it, libsndfile can."""
    return _wav_bytes(7, 1, bytes([0xFF]) * n, rate)


def _wav_bytes(tag: int, width: int, data: bytes, rate: int) -> bytes:
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * width, width, 8 * width)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    body += struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def mel_bin(freq: float, n_mels: int, fmax: float) -> int:
    """Index of the mel band whose centre is nearest `freq` (TF's mel scale)."""
    mel = lambda f: 1127.0 * np.log1p(np.asarray(f) / 700.0)  # noqa: E731
    centres = np.linspace(0.0, mel(fmax), n_mels + 2)[1:-1]
    return int(np.argmin(abs(centres - mel(freq))))


def peak_bin(featurizer: AudioFeaturizer, cells: list) -> list[int]:
    out = featurizer.fit_transform(cells)
    return [int(np.argmax(row.mean(axis=0))) for row in out]


@pytest.fixture
def stdlib_only(monkeypatch):
    """Act as if soundfile were not installed (its error messages differ)."""
    monkeypatch.setattr(_audio_io, "_soundfile", lambda: None)


def test_shapes_dtypes_and_spec(tmp_path):
    cells = [write_wav(tmp_path / "a.wav", tone(440, SR), SR), tone(300, SR, 2.0)]
    for features, shape in [("log_mel", (98, 40)), ("mfcc", (98, 40)), ("waveform", (SR, 1))]:
        f = AudioFeaturizer(features=features, duration=1.0)
        out = f.fit_transform(cells)
        assert out.shape == (2, *shape) and out.dtype == np.float32
        assert f.spec_ == ModalitySpec("audio", shape, "float32")
        assert (f.n_frames_, f.n_samples_, f.n_features_in_) == (shape[0], SR, 1)
    names = AudioFeaturizer(n_mels=8, duration=0.1).fit(cells).get_feature_names_out()
    assert len(names) == 8 * 8 and names[0] == "audio_t0_m0" and names[9] == "audio_t1_m1"
    series = pd.Series(cells, name="voice")
    f = AudioFeaturizer(features="mfcc", n_mels=8, duration=0.1).fit(series)
    assert f.get_feature_names_out()[1] == "voice_t0_c1" and f.spec_.columns == ("voice",)


@pytest.mark.parametrize("freq", [440, 1000, 3000])
def test_tone_energy_peaks_in_its_mel_bin(tmp_path, freq):
    path = write_wav(tmp_path / "t.wav", tone(freq, SR), SR)
    f = AudioFeaturizer(duration=0.5, normalize=False)
    assert peak_bin(f, [path]) == [mel_bin(freq, 40, SR / 2)]


def test_resampling_keeps_the_tone_bin(tmp_path):
    cells = [
        write_wav(tmp_path / "8k.wav", tone(440, 8000), 8000),
        write_wav(tmp_path / "44k.wav", tone(440, 44100), 44100),
        write_wav(tmp_path / "16k.wav", tone(440, SR), SR),
    ]
    f = AudioFeaturizer(duration=0.5, normalize=False, features="waveform")
    waves = f.fit_transform(cells)[:, :, 0]
    np.testing.assert_allclose(waves[0, 100:-100], waves[2, 100:-100], atol=0.01)
    np.testing.assert_allclose(waves[1, 100:-100], waves[2, 100:-100], atol=0.01)
    assert peak_bin(AudioFeaturizer(duration=0.5, normalize=False), cells) == [7, 7, 7]


def test_stereo_is_the_mean_of_its_channels(tmp_path):
    left, right = tone(440, SR), tone(1000, SR, amp=0.3)
    stereo = np.stack([left, right], axis=1)
    q = np.round(stereo * 32767) / 32768  # what the 16-bit file holds
    f = AudioFeaturizer(duration=0.5, features="waveform", normalize=False)
    out = f.fit_transform([write_wav(tmp_path / "s.wav", stereo, SR), q, q.mean(axis=1)])
    np.testing.assert_allclose(out[0], out[2], atol=1e-6)
    np.testing.assert_allclose(out[1], out[2], atol=1e-6)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_pcm_widths_decode_to_the_same_wave(tmp_path, width):
    signal = tone(440, 8000, 0.1, amp=0.9)  # negative samples test the sign handling
    path = write_wav(tmp_path / f"w{width}.wav", signal, 8000, width)
    f = AudioFeaturizer(sample_rate=8000, duration=0.1, features="waveform", normalize=False)
    np.testing.assert_allclose(f.fit_transform([path])[0, :, 0], signal, atol=1.5 / 128)


def test_integer_arrays_scale_like_pcm():
    f = AudioFeaturizer(sample_rate=8000, duration=0.01, features="waveform", normalize=False)
    out = f.fit_transform([np.array([16384, -32768], np.int16), np.array([192, 0], np.uint8)])
    np.testing.assert_array_equal(out[:, :2, 0], [[0.5, -1.0], [0.5, -1.0]])


def test_padding_and_cropping():
    f = AudioFeaturizer(sample_rate=100, duration=0.5, features="waveform", normalize=False)
    short, long = np.full(20, 0.25), np.linspace(-1, 1, 120)
    out = f.fit_transform([short, long])[:, :, 0]
    np.testing.assert_array_equal(out[0], np.r_[np.full(20, 0.25), np.zeros(30)])
    np.testing.assert_array_equal(out[1], long[:50].astype(np.float32))


def test_missing_cells_give_exact_zero_rows():
    X = pd.Series([tone(440, SR), None, np.nan, tone(880, SR), pd.NA], name="voice")
    out = AudioFeaturizer(duration=0.5).fit_transform(X)
    assert (out[[1, 2, 4]] == 0).all() and (out[[0, 3]] != 0).any(axis=(1, 2)).all()


def test_normalization_uses_present_rows_and_keeps_constant_bins():
    cells = [tone(440, SR), None, tone(2000, SR, amp=0.1)]
    raw = AudioFeaturizer(duration=0.5, normalize=False).fit_transform(cells)[[0, 2]]
    f = AudioFeaturizer(duration=0.5).fit(cells)
    np.testing.assert_allclose(f.mean_, raw.mean(axis=(0, 1)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f.scale_, raw.std(axis=(0, 1)), rtol=1e-4)
    out = f.transform(cells)[[0, 2]]
    np.testing.assert_allclose(out.mean(axis=(0, 1)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 1)), 1, atol=1e-3)
    silent = AudioFeaturizer(duration=0.5).fit([np.zeros(SR)])
    assert (silent.scale_ == 1).all()  # a constant bin is not divided by ~0


def test_chunked_statistics_match_one_pass(monkeypatch):
    cells = [tone(200 * (i + 1), SR, amp=0.1 * (i + 1)) for i in range(5)] + [None]
    whole = AudioFeaturizer(duration=0.2).fit(cells)
    monkeypatch.setattr(_audio, "_CHUNK", 2)
    chunked = AudioFeaturizer(duration=0.2).fit(cells)
    np.testing.assert_allclose(chunked.mean_, whole.mean_, rtol=1e-6)
    np.testing.assert_allclose(chunked.scale_, whole.scale_, rtol=1e-5)
    np.testing.assert_allclose(chunked.transform(cells), whole.transform(cells), atol=1e-5)


def test_bytes_cells_and_parallel_paths_match(tmp_path):
    paths = [write_wav(tmp_path / f"{i}.wav", tone(300 + 50 * i, SR, 0.2), SR) for i in range(12)]
    f = AudioFeaturizer(duration=0.2)
    from_paths = f.fit_transform(paths)
    np.testing.assert_array_equal(f.transform([p.read_bytes() for p in paths]), from_paths)
    np.testing.assert_array_equal(f.transform([str(p) for p in paths]), from_paths)
    serial = AudioFeaturizer(duration=0.2, n_jobs=1).fit_transform(paths)
    np.testing.assert_array_equal(serial, from_paths)


def test_dataframe_input_and_multi_column_error():
    df = pd.DataFrame({"voice": [tone(440, SR, 0.1), None]})
    f = AudioFeaturizer(duration=0.1).fit(df)
    assert f.feature_names_in_.tolist() == ["voice"] and f.transform(df).shape == (2, 8, 40)
    with pytest.raises(InputError, match="one column"):
        f.fit(df.assign(other=1))
    with pytest.raises(InputError, match="every cell of column 'voice' is missing"):
        AudioFeaturizer().fit(pd.Series([None, None], name="voice"))
    assert not AudioFeaturizer(normalize=False).fit_transform([None]).any()


def _good_wav(d: Path) -> bytes:
    return write_wav(d / "good.wav", tone(440, SR, 0.1), SR).read_bytes()


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_CELLS = {
    "missing file": (lambda d: str(d / "nope.wav"), InputError, "file not found"),
    "directory": (lambda d: d, InputError, "is a directory"),
    "zero bytes": (lambda d: _file(d / "e.wav", b""), InputError, "empty"),
    "text file": (
        lambda d: _file(d / "t.wav", b"not audio"),
        DecodeError,
        "not an audio file",
    ),
    "truncated wav": (
        lambda d: _file(d / "c.wav", _good_wav(d)[:-500]),
        DecodeError,
        "truncated",
    ),
    "header only": (
        lambda d: _file(d / "h.wav", _good_wav(d)[:20]),
        DecodeError,
        "WAV",
    ),
    "0-frame wav": (
        lambda d: write_wav(d / "z.wav", np.zeros(0), SR),
        InputError,
        "expected at least one sample",
    ),
    "empty array": (lambda d: np.zeros(0), InputError, "expected at least one sample"),
    "2-D array": (lambda d: np.zeros((16, 100)), InputError, "at most 8 channels"),
    "3-D array": (lambda d: np.zeros((4, 4, 4)), InputError, r"shape \(4, 4, 4\)"),
    "NaN sample": (lambda d: np.array([0.1, np.nan]), InputError, "NaN or inf"),
    "inf sample": (lambda d: np.array([0.1, np.inf]), InputError, "NaN or inf"),
    "bool array": (lambda d: np.array([True]), InputTypeError, "numeric waveform"),
    "not a path": (lambda d: "a happy dog", InputError, "file not found: 'a happy dog'"),
    "number": (lambda d: 5, InputTypeError, "Received: int"),
    "flac bytes": (lambda d: b"fLaC" + bytes(40), InputError, r"pip install 'mmsk\[audio\]'"),
    "mu-law wav": (
        lambda d: _file(d / "u.wav", mulaw_wav_bytes(10, SR)),
        DecodeError,
        r"not a WAV file mmsk can read \(ValueError: .*MULAW.*pip install 'mmsk\[audio\]'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CELLS))
def test_bad_cells_name_column_row_and_path(tmp_path, case, stdlib_only):
    make, error, match = BAD_CELLS[case]
    bad = make(tmp_path)
    X = pd.Series([tone(440, SR, 0.1), bad], index=[10, 11], name="voice")
    with pytest.raises(error, match=match) as info:
        AudioFeaturizer(duration=0.1).fit(X)
    assert "column 'voice', row 11" in str(info.value)
    if isinstance(bad, Path) and case != "directory":
        assert str(bad) in str(info.value)


def test_bad_whole_inputs():
    f = AudioFeaturizer(duration=0.1)
    with pytest.raises(InputError, match="Reshape your data"):
        f.fit(np.zeros(100))
    with pytest.raises(InputError, match="0 rows"):
        f.fit([])
    with pytest.raises(ValueError, match="Complex data not supported"):
        f.fit(np.ones((2, 5), complex))
    with pytest.raises(InvalidParameterError, match="features"):
        AudioFeaturizer(features="spectrum").fit([np.zeros(10)])
    with pytest.raises(ValueError, match="duration >= frame_length"):
        AudioFeaturizer(duration=0.01).fit([np.zeros(10)])
    with pytest.raises(ValueError, match="fmax <= sample_rate / 2"):
        AudioFeaturizer(fmax=9000.0).fit([np.zeros(10)])


def test_not_fitted():
    with pytest.raises(NotFittedError):
        AudioFeaturizer().transform([np.zeros(10)])
    with pytest.raises(NotFittedError):
        AudioFeaturizer().get_feature_names_out()


def test_clone_and_pickle_round_trip():
    cells = [tone(440, SR, 0.3), None, tone(900, SR, 0.1)]
    f = AudioFeaturizer(duration=0.3, features="mfcc", n_mels=13).fit(cells)
    expected = f.transform(cells)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(f)).transform(cells), expected)
    np.testing.assert_array_equal(clone(f).fit(cells).transform(cells), expected)
    assert clone(f).get_params() == f.get_params()


@pytest.mark.skipif(
    _audio_io._soundfile() is None, reason="the optional soundfile package is not installed"
)
def test_soundfile_decodes_flac_and_wav_encodings_scipy_cannot(tmp_path):
    sf = _audio_io._soundfile()
    signal = tone(440, SR, 0.2).astype(np.float32)
    sf.write(tmp_path / "a.flac", signal, SR)
    f = AudioFeaturizer(duration=0.2, features="waveform", normalize=False)
    out = f.fit_transform([tmp_path / "a.flac", float_wav_bytes(signal, SR)])[:, :, 0]
    np.testing.assert_allclose(out, [signal, signal], atol=1e-4)
    mulaw = f.transform([mulaw_wav_bytes(SR // 5, SR)])  # the fallback: mu-law silence
    assert np.abs(mulaw).max() < 1e-3
    with pytest.raises(DecodeError, match="row 0"):
        f.transform([b"not audio at all"])


def test_float_wav_decodes_without_soundfile(stdlib_only):
    signal = tone(440, SR, 0.2).astype(np.float32)
    f = AudioFeaturizer(duration=0.2, features="waveform", normalize=False)
    out = f.fit_transform([float_wav_bytes(signal, SR), None])[:, :, 0]
    np.testing.assert_allclose(out[0], signal, atol=1e-7)
    with pytest.raises(InputError, match="NaN or inf"):
        f.transform([float_wav_bytes(np.full_like(signal, np.inf), SR)])


@pytest.mark.skipif(
    _audio_io._soundfile() is None, reason="the optional soundfile package is not installed"
)
def test_one_message_for_a_bad_file_whatever_is_installed(tmp_path, monkeypatch):
    garbage = _file(tmp_path / "garbage.wav", bytes(range(100, 200)))
    riff = _file(tmp_path / "riff.wav", b"RIFF" + struct.pack("<I", 36) + b"WAVE" + bytes(32))
    f = AudioFeaturizer(duration=0.1).fit([tone(440, SR, 0.1)])

    def messages():
        out = []
        for path in (garbage, riff):
            with pytest.raises(DecodeError) as info:
                f.transform([path])
            out.append(str(info.value))
        return out

    with_soundfile = messages()
    monkeypatch.setattr(_audio_io, "_soundfile", lambda: None)
    assert messages() == with_soundfile
    assert with_soundfile[0] == (
        f"column 'X', row 0: {str(garbage)!r}: not an audio file (starts with "
        "b'defghijklmno'); expected a WAV file, or FLAC, OGG or MP3 with soundfile (install "
        "the optional decoder with `pip install 'mmsk[audio]'` (soundfile))"
    )
    assert "not a WAV file mmsk can read" in with_soundfile[1]


# In the fast tier: test_import.py::test_preprocessing_and_inference_stay_light_until_used
@pytest.mark.slow
def test_importing_the_module_does_not_import_tensorflow():
    code = "import sys, mmsk.preprocessing._audio; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


SMALL = {"sample_rate": 100, "duration": 0.2, "frame_length": 0.05, "frame_step": 0.02}
# One reason per check that cannot apply to this transformer.
EXPECTED_FAILED_CHECKS = {
    "check_n_features_in_after_fitting": (
        "waveforms of any length are accepted and padded/cropped to `duration`, so "
        "transform does not reject a different number of samples than seen in fit"
    ),
    "check_transformer_general": (
        "it expects transform(X[:, :-1]) to raise, but shorter waveforms are valid input "
        "and are padded to `duration`"
    ),
}


@parametrize_with_checks(
    [
        AudioFeaturizer(n_mels=4, **SMALL),
        AudioFeaturizer(features="waveform", **SMALL),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
