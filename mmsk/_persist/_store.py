"""Where a save lives: a folder or a zip file holding the same members."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from mmsk.exceptions import PersistenceError

CONFIG = "config.json"
ARRAYS = "arrays.npz"


def is_zip_path(path: Path) -> bool:
    return path.suffix.lower() == ".zip"


def write(path: Path, members: dict[str, bytes]) -> None:
    """Write ``members`` to a zip (``*.zip``) or a folder, replacing an earlier save whole.

    Everything is written next to ``path`` first and renamed into place, so an
    error or Ctrl-C never leaves a half-written save behind.
    """
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    if is_zip_path(path):
        if path.is_dir():
            raise PersistenceError(
                f"Expected a path for a zip file. Received: {os.fspath(path)!r}, a folder"
            )
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
    if path.exists() and not (path.is_dir() and (path / CONFIG).is_file()):
        what = "a file" if not path.is_dir() else "a folder that is not an mmsk save"
        if not path.is_dir() or any(path.iterdir()):
            raise PersistenceError(
                f"Expected a new path, an earlier mmsk save, or a path ending in .zip. "
                f"Received: {os.fspath(path)!r}, {what}; mmsk.save does not replace it"
            )
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
    """Read members of a save by name, from a folder or a zip file."""

    def __init__(self, path: Path, archive: zipfile.ZipFile | None) -> None:
        self.path = path
        self.archive = archive
        self.label = repr(os.fspath(path))

    def read(self, name: str) -> bytes:
        try:
            if self.archive is not None:
                return self.archive.read(name)
            target = (self.path / name).resolve()
            if self.path.resolve() not in target.parents:
                raise PersistenceError(f"{self.label}: member {name!r} is outside the save")
            return target.read_bytes()
        except (KeyError, FileNotFoundError) as exc:
            raise PersistenceError(
                f"{self.label}: {name} is missing; expected a whole mmsk save (the file is "
                "incomplete or damaged)"
            ) from exc
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise PersistenceError(
                f"{self.label}: {name} cannot be read ({type(exc).__name__}: {exc}); the file "
                "is damaged or truncated"
            ) from exc


@contextlib.contextmanager
def open_save(path: Path) -> Iterator[Reader]:
    """A :class:`Reader` for a save folder or zip, with clear errors for anything else."""
    where = repr(os.fspath(path))
    if path.is_dir():
        yield Reader(path, None)
        return
    if not path.exists():
        raise PersistenceError(f"{where} does not exist; expected a file written by mmsk.save")
    try:
        data = path.read_bytes()
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        found = (
            "an empty file"
            if path.is_file() and path.stat().st_size == 0
            else "a file that is not a zip archive, or a truncated or damaged one"
        )
        raise PersistenceError(
            f"{where} is not a readable mmsk save. Expected a folder or a zip file written by "
            f"mmsk.save. Received: {found} ({type(exc).__name__}: {exc})"
        ) from exc
    with archive:
        yield Reader(path, archive)
