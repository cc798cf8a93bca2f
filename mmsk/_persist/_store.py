"""Where a save lives: a folder or a zip file holding the same members.

Writing replaces only an earlier mmsk save, recognised by the marker member
``.mmsk-save`` that :func:`write` puts in every save; reading checks every
member (see :mod:`mmsk._persist._limits`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from mmsk._persist._limits import (
    READ_ERRORS,
    Budget,
    Limits,
    check_zip,
    read_folder_member,
    read_zip_member,
)
from mmsk.exceptions import PersistenceError, UnsafeFileError

CONFIG = "config.json"
ARRAYS = "arrays.npz"
MARKER = ".mmsk-save"
MARKER_TEXT = b"mmsk save: this folder or zip was written by mmsk.save, which may replace it\n"
MODEL_FILE = re.compile(r"models/[0-9]{1,6}\.keras")


def is_member(name: str) -> bool:
    """True for the names a save holds."""
    return name in (CONFIG, ARRAYS, MARKER) or bool(MODEL_FILE.fullmatch(name))


def is_zip_path(path: Path) -> bool:
    return path.suffix.lower() == ".zip"


def _zip_is_save(path: Path) -> bool:
    """True when ``path`` is a zip written by mmsk.save (it holds the marker)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except READ_ERRORS:
        return False
    return MARKER in names and all(is_member(n) or n == "models/" for n in names)


def _folder_refusal(path: Path) -> str | None:
    """Why the folder ``path`` may not be replaced, or None when it may."""
    entries = sorted(os.listdir(path))
    if not entries:
        return None
    if MARKER not in entries:
        return "a folder that is not an mmsk save (it has no .mmsk-save marker)"
    others = []
    for name in entries:
        full = path / name
        if name == "models" and full.is_dir() and not full.is_symlink():
            others += [f"models/{n}" for n in os.listdir(full) if not MODEL_FILE.fullmatch(
                f"models/{n}") or not (full / n).is_file() or (full / n).is_symlink()]  # fmt: skip
        elif not is_member(name) or not full.is_file() or full.is_symlink():
            others.append(name)
    if others:
        return f"an mmsk save that also holds other files ({', '.join(others[:5])})"
    return None


def _refuse(path: Path, what: str) -> PersistenceError:
    return PersistenceError(
        f"Expected a new path, an earlier mmsk save, or an empty folder. Received: "
        f"{os.fspath(path)!r}, {what}; mmsk.save does not replace it (nothing was touched)"
    )


def write(path: Path, members: dict[str, bytes]) -> None:
    """Write ``members`` to a zip (``*.zip``) or a folder, replacing only an earlier save.

    Everything is written next to ``path`` first and renamed into place, so an
    error or Ctrl-C never leaves a half-written save behind.  An existing file
    or folder is replaced only when it is an mmsk save (it holds the marker
    and nothing but a save's members); an empty folder is used as is.
    """
    members = {MARKER: MARKER_TEXT, **members}
    parent = path.parent
    if is_zip_path(path):
        if path.is_dir():
            raise _refuse(path, "a folder")
        if os.path.lexists(path):
            mode = os.lstat(path).st_mode
            if not stat.S_ISREG(mode) or not _zip_is_save(path):
                raise _refuse(path, "a file that is not a zip written by mmsk.save")
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
        try:
            with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as archive:
                for name, data in members.items():
                    # Deflated even when compressed already: a .keras file is a zip, and
                    # stored as is, its directory would make a truncated save look whole.
                    archive.writestr(name, data, zipfile.ZIP_DEFLATED)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    if os.path.lexists(path):
        if path.is_symlink() or not path.is_dir():
            raise _refuse(path, "a file" if not path.is_symlink() else "a link")
        why = _folder_refusal(path)
        if why is not None:
            raise _refuse(path, why)
    parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    old = None
    try:
        for name, data in members.items():
            target = tmp_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=parent))
            os.replace(path, old / "save")
        os.replace(tmp_dir, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


class Reader:
    """Read members of a save by name, from a folder or a zip file, within a budget."""

    def __init__(self, path: Path, budget: Budget, archive: zipfile.ZipFile | None) -> None:
        self.path = path
        self.archive = archive
        self.budget = budget
        self.label = repr(os.fspath(path))
        self.members: dict[str, zipfile.ZipInfo] = {}
        if archive is not None:
            self.members = check_zip(archive, budget, is_member, self.label)

    def read(self, name: str) -> bytes:
        if self.archive is None:
            return read_folder_member(os.fspath(self.path), name, self.budget, self.label)
        info = self.members.get(name)
        if info is None:
            raise PersistenceError(
                f"{self.label}: {name} is missing; expected a whole mmsk save (the file is "
                "incomplete or damaged)"
            )
        return read_zip_member(self.archive, info, self.budget, self.label)


@contextlib.contextmanager
def open_save(path: Path, limits: Limits) -> Iterator[Reader]:
    """A :class:`Reader` for a save folder or zip, with clear errors for anything else."""
    where = repr(os.fspath(path))
    budget = Budget(limits, where)
    if path.is_dir():
        yield Reader(path, budget, None)
        return
    if not os.path.lexists(path):
        raise PersistenceError(f"{where} does not exist; expected a file written by mmsk.save")
    try:  # the path the user gave may be a link; a FIFO must not block
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise PersistenceError(
            f"{where} cannot be opened ({type(exc).__name__}: {exc}); expected a folder or a "
            "zip file written by mmsk.save"
        ) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeFileError(
            f"{where} is not a regular file (a FIFO, device or socket); expected a folder or a "
            "zip file written by mmsk.save"
        )
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            size = os.fstat(fd).st_size
            if size > limits.max_total_bytes:
                raise budget.too_big(path.name, size)
            try:
                archive = zipfile.ZipFile(fh)
            except READ_ERRORS as exc:
                found = (
                    "an empty file"
                    if size == 0
                    else "a file that is not a zip archive, or a truncated or damaged one"
                )
                raise PersistenceError(
                    f"{where} is not a readable mmsk save. Expected a folder or a zip file "
                    f"written by mmsk.save. Received: {found} ({type(exc).__name__}: {exc})"
                ) from exc
            with archive:
                yield Reader(path, budget, archive)
    finally:
        os.close(fd)
