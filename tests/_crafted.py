"""Helpers that craft hostile mmsk saves for tests/test_persist_security.py.

A crafted file starts as a real save (written by ``mmsk.save``) and is edited:
its ``config.json`` as JSON, its ``arrays.npz`` and ``models/<n>.keras`` as zips,
and the outer zip byte by byte (:func:`raw_zip`), so a test can set header fields
that :mod:`zipfile` would never write (a symlink mode, the encrypted flag, an
unknown compression method, a wrong CRC, a huge declared size).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REGULAR = 0o100644 << 16
SYMLINK = 0o120777 << 16


# ---- config.json ------------------------------------------------------------------------


def read_config(save: Path) -> dict[str, Any]:
    return json.loads((save / "config.json").read_text("utf-8"))


def write_config(save: Path, config: Any) -> None:
    (save / "config.json").write_text(json.dumps(config), "utf-8")


def edit_config(save: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    config = read_config(save)
    edit(config)
    write_config(save, config)


def nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every tagged node ``{"$": ...}`` in a configuration, depth first."""
    if isinstance(node, dict):
        if "$" in node:
            yield node
        for value in node.values():
            yield from nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from nodes(value)


def estimator(config: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The first estimator node whose class name ends with ``suffix`` (e.g. ":StandardScaler")."""
    for node in nodes(config):
        if node.get("$") == "estimator" and str(node.get("class", "")).endswith(suffix):
            return node
    raise LookupError(f"no estimator {suffix!r} in the configuration")


# ---- arrays.npz -------------------------------------------------------------------------


def read_npz(save: Path) -> dict[str, np.ndarray]:
    with np.load(save / "arrays.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def write_npz(save: Path, arrays: dict[str, Any], *, allow_pickle: bool = False) -> None:
    buffer = io.BytesIO()
    if allow_pickle:
        np.savez(buffer, **arrays)  # object arrays are pickled by np.save
    else:
        np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    (save / "arrays.npz").write_bytes(buffer.getvalue())


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """The header of a ``.npy`` file (format 1.0) declaring ``shape``, padded as numpy does."""
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    pad = 64 - (10 + len(text) + 1) % 64
    text += " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def array_key(node: Any) -> str:
    assert isinstance(node, dict) and node.get("$") == "array", node
    return str(node["key"])


# ---- zip archives written field by field -------------------------------------------------


@dataclass
class Entry:
    """One zip member as it lies on disk; :func:`entry` fills it from plain bytes."""

    name: str
    data: bytes  # as stored (compressed already when method is 8)
    crc: int
    size: int  # uncompressed size declared in the headers
    method: int = 8
    flags: int = 0
    external_attr: int = REGULAR
    extra: dict[str, Any] = field(default_factory=dict)


def deflate(payload: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(payload) + packer.flush()


def entry(name: str, payload: bytes, *, method: int = 8, **fields: Any) -> Entry:
    data = deflate(payload) if method == 8 else payload
    return Entry(name, data, zlib.crc32(payload), len(payload), method, **fields)


def raw_zip(entries: list[Entry]) -> bytes:
    """A zip file holding ``entries`` exactly as given (no checks, duplicates allowed)."""
    out = io.BytesIO()
    central = []
    for e in entries:
        offset = out.tell()
        name = e.name.encode("utf-8")
        out.write(
            struct.pack(
                "<4s5H3L2H",
                b"PK\x03\x04",
                20,
                e.flags,
                e.method,
                0,
                0x21,
                e.crc,
                len(e.data),
                e.size,
                len(name),
                0,
            )
        )
        out.write(name + e.data)
        central.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                (3 << 8) | 20,
                20,
                e.flags,
                e.method,
                0,
                0x21,
                e.crc,
                len(e.data),
                e.size,
                len(name),
                0,
                0,
                0,
                0,
                e.external_attr,
                offset,
            )
            + name
        )
    start = out.tell()
    for record in central:
        out.write(record)
    size = out.tell() - start
    out.write(
        struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), size, start, 0)
    )
    return out.getvalue()


def folder_entries(save: Path) -> list[Entry]:
    """The members of a folder save, in a stable order, ready for :func:`raw_zip`."""
    files = sorted(p for p in save.rglob("*") if p.is_file())
    return [entry(p.relative_to(save).as_posix(), p.read_bytes()) for p in files]


def zip_members(data: bytes) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zeros_bomb(name: str, size: int, head: bytes = b"", fill: bytes = b" ") -> Entry:
    """A deflated member of ``size`` bytes (``head`` then ``fill``), built in well under a second.

    One block of ``fill`` is compressed once with a full flush (which resets
    the compressor, so the block can be repeated as is) and repeated.
    """
    block = 1 << 22
    assert size >= len(head) + block and (size - len(head)) % block == 0
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = packer.compress(head) + packer.flush(zlib.Z_FULL_FLUSH)
    chunk = fill * block
    packed = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    count = (size - len(head)) // block
    data = first + packed * count + packer.flush(zlib.Z_FINISH)
    crc = zlib.crc32(head)
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    return Entry(name, data, crc, size)


# ---- keras models inside a save ----------------------------------------------------------


def keras_members(save: Path, name: str = "models/0.keras") -> dict[str, bytes]:
    return zip_members((save / name).read_bytes())


def write_keras(save: Path, members: dict[str, bytes], name: str = "models/0.keras") -> None:
    (save / name).write_bytes(raw_zip([entry(n, d) for n, d in members.items()]))


def edit_keras_config(save: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    members = keras_members(save)
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    write_keras(save, members)


def keras_layers(config: dict[str, Any], class_name: str) -> list[dict[str, Any]]:
    return [lay for lay in config["config"]["layers"] if lay["class_name"] == class_name]


# ---- watching what a load does -----------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its mode, size and mtime (links not followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


CHILD = r"""
import json, sys, time
import mmsk
from mmsk.exceptions import PersistenceError, UnsafeFileError
start = time.monotonic()
out = {"error": None}
try:
    mmsk.load(sys.argv[1])
except BaseException as exc:
    out.update(error=type(exc).__name__, persistence=isinstance(exc, PersistenceError),
               unsafe=isinstance(exc, UnsafeFileError), message=str(exc)[:4000])
out["seconds"] = time.monotonic() - start
# VmHWM, not ru_maxrss: that one keeps the parent's peak across fork and exec
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
out["maxrss_mb"] = int(hwm[0].split()[1]) / 1024
print("RESULT " + json.dumps(out), flush=True)
"""


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def load_isolated(
    path: Path, cwd: Path, *, timeout: float = 60, rss_limit_mb: float = 1500
) -> dict[str, Any]:
    """``mmsk.load(path)`` in a child process that is killed if it hangs or grows too big.

    Returns what the child reported (error class, flags, message, seconds,
    peak memory), or ``{"killed": why}``.
    """
    import mmsk

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    here = os.path.dirname(os.path.dirname(os.path.abspath(mmsk.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))  # same mmsk
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, os.fspath(path)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    killed = None
    while child.poll() is None:
        if time.monotonic() > deadline:
            killed = f"still running after {timeout} s"
        elif _rss_mb(child.pid) > rss_limit_mb:
            killed = f"grew past {rss_limit_mb} MB"
        if killed:
            child.kill()
            break
        time.sleep(0.05)
    stdout, stderr = child.communicate()
    if killed:
        return {"killed": killed}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    return {"killed": f"exit {child.returncode}: {stderr[-2000:]}"}


def copy_save(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst
