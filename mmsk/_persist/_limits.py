"""Bounded, checked reading of untrusted archives: zip members, folder members, JSON, npz.

Nothing here trusts a size, a count or a type that a file declares: zip members
are decompressed in chunks and stopped one byte past their cap, folder members
are opened without following links or blocking on FIFOs, and ``.npy`` headers
are parsed and checked before an array is allocated.
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmsk.exceptions import PersistenceError, UnsafeFileError

MiB = 1 << 20
GiB = 1 << 30
CHUNK = 1 * MiB
# Every exception a damaged or crafted archive can raise while it is read.
READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    OverflowError,
    MemoryError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
)


@dataclass(frozen=True)
class Limits:
    """Caps that :func:`mmsk.load` applies while it reads a file.

    Attributes
    ----------
    max_member_bytes : int
        Uncompressed size of one member (an array, a ``.keras`` model, its weights).
    max_total_bytes : int
        Uncompressed size of everything read from one save, together.
    max_config_bytes : int
        Size of a ``config.json`` (the save's and each Keras model's).
    max_depth : int
        Nesting depth of a JSON document.
    max_items : int
        Number of values (lists, objects, strings, numbers) in a JSON document.
    max_members : int
        Number of members in a zip archive.
    """

    max_member_bytes: int = 1 * GiB
    max_total_bytes: int = 4 * GiB
    max_config_bytes: int = 64 * MiB
    max_depth: int = 100
    max_items: int = 10_000_000
    max_members: int = 10_000


DEFAULT_LIMITS = Limits()


class Budget:
    """The limits of one load, and how many bytes it has read so far."""

    def __init__(self, limits: Limits, where: str) -> None:
        self.limits = limits
        self.where = where
        self.used = 0

    def cap(self, name: str) -> int:
        """The most bytes member ``name`` may still hold."""
        own = self.limits.max_member_bytes
        if name.endswith("config.json") or name.endswith("metadata.json"):
            own = min(own, self.limits.max_config_bytes)
        return max(0, min(own, self.limits.max_total_bytes - self.used))

    def too_big(self, name: str, size: int | str) -> PersistenceError:
        return PersistenceError(
            f"{self.where}: member {name!r} holds {size} bytes, more than mmsk.load reads "
            f"(max_member_bytes={self.limits.max_member_bytes}, max_total_bytes="
            f"{self.limits.max_total_bytes}, max_config_bytes={self.limits.max_config_bytes}, "
            f"{self.used} bytes read so far); raise the limit with mmsk.load(..., "
            "max_member_bytes=...) if you expect a model this large"
        )

    def take(self, name: str, stream: Any) -> bytes:
        """Read ``stream`` to its end, but never more than :meth:`cap` bytes."""
        cap = self.cap(name)
        parts, size = [], 0
        while True:
            chunk = stream.read(min(CHUNK, cap + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
            if size > cap:
                raise self.too_big(name, f"more than {cap}")
        self.used += size
        return b"".join(parts)


def _bad_name(name: str) -> bool:
    parts = name.split("/")
    return (
        not name
        or "\\" in name
        or "\x00" in name
        or name.startswith("/")
        or ":" in parts[0]
        or any(p in ("", ".", "..") for p in parts[:-1])
        or parts[-1] in (".", "..")
    )


def check_zip(archive: zipfile.ZipFile, budget: Budget, allowed: Any, label: str) -> dict:
    """Check a zip's directory; return its members by name (directory entries left out).

    ``allowed(name)`` says which member names the format has.
    """
    infos = archive.infolist()
    if len(infos) > budget.limits.max_members:
        raise PersistenceError(
            f"{label}: {len(infos)} members; expected at most {budget.limits.max_members}"
        )
    found: dict[str, zipfile.ZipInfo] = {}
    declared = 0
    for info in infos:
        name = info.filename
        if _bad_name(name.rstrip("/") if name.endswith("/") else name):
            raise UnsafeFileError(
                f"{label}: member name {name!r} is absolute, climbs out with '..', or holds a "
                "backslash or drive; mmsk.load refuses it"
            )
        mode = info.external_attr >> 16
        if name.endswith("/"):  # a folder entry, as zip tools write them
            if info.file_size:
                raise PersistenceError(f"{label}: folder entry {name!r} holds data")
            continue
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise UnsafeFileError(
                f"{label}: member {name!r} is not a regular file (a link or a device, mode "
                f"{oct(mode)}); mmsk.load refuses it"
            )
        if name in found:
            raise UnsafeFileError(
                f"{label}: member {name!r} appears twice; a save holds each member once, and "
                "mmsk.load refuses an ambiguous file"
            )
        if not allowed(name):
            raise PersistenceError(f"{label}: unexpected member {name!r}; not an mmsk save")
        if info.flag_bits & 0x1:
            raise PersistenceError(f"{label}: member {name!r} is encrypted; mmsk.load refuses it")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise PersistenceError(
                f"{label}: member {name!r} uses compression method {info.compress_type}; "
                "expected stored or deflated"
            )
        if info.file_size > budget.cap(name):
            raise budget.too_big(name, info.file_size)
        declared += info.file_size
        if declared > budget.limits.max_total_bytes:
            raise budget.too_big(name, f"{declared} (all members together)")
        found[name] = info
    return found


def read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget,
                    label: str) -> bytes:  # fmt: skip
    """A member's bytes, decompressed in chunks and checked (size, CRC)."""
    try:
        with archive.open(info) as stream:
            return budget.take(info.filename, stream)
    except PersistenceError:
        raise
    except READ_ERRORS as exc:
        raise PersistenceError(
            f"{label}: member {info.filename!r} cannot be read ({type(exc).__name__}: {exc}); "
            "the file is damaged or truncated"
        ) from exc


_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_FLAGS |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


def open_regular(root: str, name: str, label: str) -> int:
    """An fd of ``root/name``: no link followed inside ``root``, a regular file, no blocking."""
    parts = name.split("/")
    if os.open in os.supports_dir_fd:
        fds = [os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))]
        try:
            for part in parts[:-1]:
                fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
            fd = os.open(parts[-1], _FLAGS, dir_fd=fds[-1])
        finally:
            for d in fds:
                os.close(d)
    else:  # no dir_fd (Windows): check each step for a link
        where = root
        for part in parts:
            where = os.path.join(where, part)
            if os.path.islink(where):
                raise OSError(f"{where} is a link")
        fd = os.open(where, _FLAGS)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnsafeFileError(
            f"{label}: {name} is not a regular file (a FIFO, device, socket or folder); "
            "mmsk.load refuses it"
        )
    return fd


def read_folder_member(root: str, name: str, budget: Budget, label: str) -> bytes:
    """``root/name`` read with the checks of :func:`open_regular` and a bounded read."""
    if _bad_name(name):
        raise UnsafeFileError(f"{label}: member name {name!r} leaves the save; refused")
    try:
        fd = open_regular(root, name, label)
    except FileNotFoundError as exc:
        raise PersistenceError(
            f"{label}: {name} is missing; expected a whole mmsk save (the file is "
            "incomplete or damaged)"
        ) from exc
    except OSError as exc:
        raise UnsafeFileError(
            f"{label}: {name} cannot be opened as a regular file inside the save "
            f"({type(exc).__name__}: {exc}); mmsk.load follows no links"
        ) from exc
    try:
        size = os.fstat(fd).st_size
        if size > budget.cap(name):
            raise budget.too_big(name, size)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as stream:
            return budget.take(name, stream)
    except PersistenceError:
        raise
    except READ_ERRORS as exc:
        raise PersistenceError(
            f"{label}: {name} cannot be read ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        os.close(fd)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _DuplicateKey(f"the key {twice!r:.80} appears twice in one object (ambiguous)")
    return out


def parse_json(data: bytes, name: str, limits: Limits, label: str) -> Any:
    """JSON with a size, depth and item cap; every failure a :class:`PersistenceError`."""
    if len(data) > limits.max_config_bytes:
        raise PersistenceError(
            f"{label}: {name} holds {len(data)} bytes; expected at most "
            f"max_config_bytes={limits.max_config_bytes}"
        )
    # An upper bound on the values, before Python objects are made for them.
    bound = data.count(b",") + data.count(b"[") + data.count(b"{") + 1
    if bound > limits.max_items * 2:
        raise PersistenceError(f"{label}: {name} holds too many values (about {bound})")
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise PersistenceError(f"{label}: {name}: {exc}; mmsk.load refuses it") from exc
    except RecursionError as exc:
        raise PersistenceError(
            f"{label}: {name} is nested too deeply; expected at most {limits.max_depth} levels"
        ) from exc
    except (UnicodeDecodeError, ValueError, MemoryError) as exc:
        raise PersistenceError(
            f"{label}: {name} is not valid JSON ({type(exc).__name__}: {exc}); the file is "
            "damaged or truncated"
        ) from exc
    items, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        items += 1
        if depth > limits.max_depth:
            raise PersistenceError(
                f"{label}: {name} is nested more than {limits.max_depth} levels deep"
            )
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        if items > limits.max_items:
            raise PersistenceError(f"{label}: {name} holds more than {limits.max_items} values")
    return value


NPY_KINDS = "biufcUS"


def open_zip(data: bytes, where: str, what: str) -> zipfile.ZipFile:
    """A zip archive over ``data`` (a member of a save), or a PersistenceError naming it."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except READ_ERRORS as exc:
        raise PersistenceError(
            f"{where} is not a readable {what} ({type(exc).__name__}: {exc}); the file is "
            "damaged or truncated"
        ) from exc


def read_npz(data: bytes, budget: Budget, label: str) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz``: headers checked before allocation, no pickle, no objects."""
    where = f"{label}: arrays.npz"
    arrays: dict[str, np.ndarray] = {}
    budget.used -= len(data)  # counted again below, as the arrays it holds
    with open_zip(data, where, "npz archive") as archive:
        infos = check_zip(archive, budget, lambda n: n.endswith(".npy"), where)
        for name, info in infos.items():
            try:
                with archive.open(info) as stream:
                    version = np.lib.format.read_magic(stream)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
                    elif version == (2, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
                    else:
                        raise ValueError(f"npy format version {version}")
                    if dtype.kind not in NPY_KINDS or dtype.fields is not None or dtype.subdtype:
                        raise PersistenceError(
                            f"{where}: array {name!r} has dtype {dtype}; expected numbers, "
                            "booleans or fixed-width strings (no objects, no pickle)"
                        )
                    if not all(isinstance(n, int) and n >= 0 for n in shape):
                        raise ValueError(f"bad shape {shape!r}")
                    nbytes = math.prod(shape) * dtype.itemsize
                    if nbytes > budget.cap(name):
                        raise budget.too_big(f"arrays.npz/{name}", nbytes)
                    raw = budget.take(name, stream)
                if len(raw) != nbytes:
                    raise ValueError(f"expected {nbytes} bytes of data, found {len(raw)}")
                array = np.frombuffer(raw, dtype=dtype).reshape(
                    shape, order="F" if fortran else "C"
                )
            except PersistenceError:
                raise
            except READ_ERRORS as exc:
                raise PersistenceError(
                    f"{where}: array {name!r} cannot be read ({type(exc).__name__}: {exc}); the "
                    "file is damaged or truncated"
                ) from exc
            arrays[name[: -len(".npy")]] = array.copy()  # writable, like np.load's
    return arrays
