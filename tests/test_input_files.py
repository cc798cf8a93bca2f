"""Files named in a table are untrusted: no path can hang mmsk or exhaust its memory
(issue 12, item 8).

Each case runs in a child process under a memory limit, with an alarm per case and
a timeout on the whole, so a regression fails the test instead of hanging it or
taking the machine's memory.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import textwrap
import wave
import zlib

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX files (FIFO, /dev)")

SECONDS = 10  # per case; each should take milliseconds
CAP = 4096  # the cap set for the "over the cap" case


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def wav_declaring(frames: int, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV whose header declares ``frames`` frames and holds 50."""
    block = 2 * channels
    fmt = struct.pack("<HHIIHH", 1, channels, 16000, 16000 * block, block, 16)
    data = b"\0" * 100
    body = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", min(frames * block, 0xFFFFFFF0)) + data
    return b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVE" + body


def good_files(folder):
    image, audio = folder / "good.png", folder / "good.wav"
    Image.fromarray(np.full((6, 6, 3), 200, np.uint8)).save(image)
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(100)
        w.writeframes((np.sin(np.arange(100)) * 2000).astype("<i2").tobytes())
    return image, audio


def make_cases(folder):
    """name -> (path, kinds it is tried with, error class, words the message holds)."""
    (folder / "folder.png").mkdir()
    os.mkfifo(folder / "fifo.png")
    with open(folder / "sparse.png", "wb") as fh:
        fh.truncate(20 * 2**30)  # 20 GB that take no disk
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "large.png").write_bytes(bytes(CAP + 1))
    (folder / "bomb.png").write_bytes(png_header(50_000, 50_000))
    (folder / "long.wav").write_bytes(wav_declaring(2**31 - 1))
    both = ("image", "audio")
    device = ("InputError", "a character device, not a regular file")
    return {
        "dev-zero": ("/dev/zero", both, *device),
        "dev-urandom": ("/dev/urandom", both, *device),
        "fifo": (folder / "fifo.png", both, "InputError", "a FIFO (named pipe), not a regular"),
        "directory": (folder / "folder.png", both, "InputError", "is a directory"),
        "sparse-20GB": (folder / "sparse.png", both, "InputError", f"is {20 * 2**30} bytes, over"),
        "symlink-to-dev-zero": (folder / "zero.png", both, *device),
        "over-the-cap": (folder / "large.png", both, "InputError", f"over the limit of {CAP}"),
        "bomb-png": (folder / "bomb.png", ("image",), "DecodeError", "too large to decode"),
        "wav-header-huge-length": (
            folder / "long.wav",
            ("audio",),
            "DecodeError",
            "truncated WAV file: the header",
        ),
    }


CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys, time
    resource.setrlimit(resource.RLIMIT_DATA, (3 * 2**30, 3 * 2**30))  # a regression: MemoryError
    import numpy as np, pandas as pd, mmsk
    from mmsk.preprocessing import AudioFeaturizer, ImagePreprocessor

    cases, good_image, good_audio, cap, seconds = json.loads(sys.argv[1])

    def alarm(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    def peak_mb():
        # This process's own peak (VmHWM): ru_maxrss would carry the parent's peak,
        # which fork passes on, e.g. a pytest-xdist worker's.
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    signal.signal(signal.SIGALRM, alarm)
    image = ImagePreprocessor(size=4).fit([good_image])
    audio = AudioFeaturizer(features="waveform", sample_rate=100, duration=0.5).fit(
        [np.zeros(50)]
    )
    for name, (path, kinds, _, _) in cases.items():
        for kind in kinds:
            X = pd.Series([good_image if kind == "image" else good_audio, path],
                          index=[10, 11], name="upload")
            transformer = image if kind == "image" else audio
            start = time.perf_counter()
            signal.alarm(seconds)
            try:
                with mmsk.config_context(max_input_file_bytes=cap if "cap" in name else None):
                    transformer.transform(X)
                error, message = None, ""
            except BaseException as exc:
                error, message = type(exc).__name__, str(exc)
            finally:
                signal.alarm(0)
            record = {"case": name, "kind": kind, "error": error, "message": message[:2000],
                      "seconds": time.perf_counter() - start,
                      "max_rss_mb": peak_mb()}
            print(json.dumps(record), flush=True)
    """
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("untrusted")
    image, audio = good_files(folder)
    cases = {k: [str(v[0]), list(v[1]), v[2], v[3]] for k, v in make_cases(folder).items()}
    argument = json.dumps([cases, str(image), str(audio), CAP, SECONDS])
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, argument], capture_output=True, text=True,
            timeout=180, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )  # fmt: skip
        out, err = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        out, err = exc.stdout or "", f"the child timed out; stderr: {exc.stderr}"
    if isinstance(out, bytes):
        out = out.decode()
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {(r["case"], r["kind"]): r for r in records}, cases, str(err)[-3000:]


CASES = [
    ("dev-zero", "image"), ("dev-zero", "audio"),
    ("dev-urandom", "image"), ("dev-urandom", "audio"),
    ("fifo", "image"), ("fifo", "audio"),
    ("directory", "image"), ("directory", "audio"),
    ("sparse-20GB", "image"), ("sparse-20GB", "audio"),
    ("symlink-to-dev-zero", "image"), ("symlink-to-dev-zero", "audio"),
    ("over-the-cap", "image"), ("over-the-cap", "audio"),
    ("bomb-png", "image"),
    ("wav-header-huge-length", "audio"),
]  # fmt: skip


@pytest.mark.parametrize("case, kind", CASES, ids=[f"{c}-{k}" for c, k in CASES])
def test_an_untrusted_file_is_refused_quickly_naming_column_row_and_path(results, case, kind):
    records, cases, stderr = results
    assert (case, kind) in records, f"no result: the child hung or crashed here\n{stderr}"
    record = records[(case, kind)]
    path, _, error, words = cases[case]
    assert record["error"] == error, record["message"]
    message = record["message"]
    assert message.startswith("column 'upload', row 11: ")
    assert repr(path) in message and words in message
    assert record["seconds"] < 5
    assert record["max_rss_mb"] < 1500  # nothing large was read or allocated


def test_the_read_stops_at_the_cap_whatever_the_size_said(tmp_path):
    # /proc files are regular files that report 0 bytes and hold more: like a file
    # that grows after its size was checked, only the bytes read can tell.
    from mmsk.exceptions import InputError
    from mmsk.preprocessing._files import read_checked

    status = "/proc/self/status"
    if not os.path.isfile(status) or os.stat(status).st_size != 0:
        pytest.skip("needs Linux /proc")
    with pytest.raises(InputError, match=r"'/proc/self/status' grew over the limit of 100 bytes"):
        read_checked(status, "image", limit=100)
    assert len(read_checked(status, "image", limit=2**20)) > 100
    path = tmp_path / "a.png"
    path.write_bytes(b"x" * 100)
    assert read_checked(path, "image", limit=100) == b"x" * 100  # the cap itself is allowed
    with pytest.raises(InputError, match=r"is 100 bytes, over the limit of 99 bytes"):
        read_checked(path, "image", limit=99)


def test_the_cap_is_a_checked_process_wide_setting(monkeypatch):
    import mmsk
    from mmsk.exceptions import ParameterError

    default = mmsk.get_config()["max_input_file_bytes"]
    assert default == 128 * 2**20
    with mmsk.config_context(max_input_file_bytes=10):
        assert mmsk.get_config()["max_input_file_bytes"] == 10
    assert mmsk.get_config()["max_input_file_bytes"] == default
    for bad in (0, -1, 1.5, "big", True):
        with pytest.raises(ParameterError, match="max_input_file_bytes"):
            mmsk.set_config(max_input_file_bytes=bad)
    monkeypatch.setenv("MMSK_MAX_INPUT_FILE_BYTES", "2048")
    assert mmsk.get_config()["max_input_file_bytes"] == 2048
    monkeypatch.setenv("MMSK_MAX_INPUT_FILE_BYTES", "lots")
    with pytest.raises(ParameterError, match="MMSK_MAX_INPUT_FILE_BYTES='lots'"):
        mmsk.get_config()


ESTIMATOR_CHILD = textwrap.dedent(
    """
    import json, signal, sys, time
    import numpy as np, pandas as pd, mmsk

    good, fifo, zero, sparse = json.loads(sys.argv[1])

    def alarm(signum, frame):
        raise TimeoutError("still running")

    signal.signal(signal.SIGALRM, alarm)

    def frame(paths):
        return pd.DataFrame({"photo": paths, "size": np.arange(len(paths), dtype=float)})

    def attempt(name, call):
        start = time.perf_counter()
        signal.alarm(60)
        try:
            call()
            error, message = None, ""
        except BaseException as exc:
            error, message = type(exc).__name__, str(exc)
        finally:
            signal.alarm(0)
        print(json.dumps({"case": name, "error": error, "message": message[:2000],
                          "seconds": time.perf_counter() - start}), flush=True)

    y = np.arange(8) % 2
    clf = mmsk.MultimodalClassifier(epochs=1, random_state=0)
    attempt("fit-fifo", lambda: clf.fit(frame([good] * 7 + [fifo]), y))
    clf.fit(frame([good] * 8), y)
    attempt("predict-dev-zero", lambda: clf.predict(frame([good, zero])))
    attempt("predict-sparse", lambda: clf.predict(frame([good, good, sparse])))
    """
)


@pytest.mark.slow
def test_fit_and_predict_on_a_dataframe_refuse_untrusted_files(tmp_path):
    good, _ = good_files(tmp_path)
    cases = make_cases(tmp_path)
    paths = [str(good), *(str(cases[c][0]) for c in ("fifo", "symlink-to-dev-zero"))]
    paths.append(str(cases["sparse-20GB"][0]))

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_DATA, (8 * 2**30, 8 * 2**30))

    proc = subprocess.run(
        [sys.executable, "-c", ESTIMATOR_CHILD, json.dumps(paths)], capture_output=True,
        text=True, timeout=300, preexec_fn=limit_memory,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    records = {
        r["case"]: r
        for r in (json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{"))
    }
    assert set(records) == {"fit-fifo", "predict-dev-zero", "predict-sparse"}, proc.stderr[-3000:]
    expected = {
        "fit-fifo": ("row 7", paths[1], "a FIFO (named pipe), not a regular file"),
        "predict-dev-zero": ("row 1", paths[2], "a character device, not a regular file"),
        "predict-sparse": ("row 2", paths[3], "over the limit"),
    }
    for case, (row, path, words) in expected.items():
        record = records[case]
        assert record["error"] == "InputError", record
        assert record["message"].startswith(f"column 'photo', {row}: "), record["message"]
        assert repr(path) in record["message"] and words in record["message"]
        assert record["seconds"] < 30
