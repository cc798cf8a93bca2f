"""``checkpoint_dir``: a training backup in a folder mmsk owns, never in a user's folder.

Keras' ``BackupAndRestore`` removes its whole ``backup_dir`` when a fit ends.
mmsk therefore never hands it the user's folder: the backup goes to a
sub-folder, ``<checkpoint_dir>/keras-backup``, next to a marker file,
``<checkpoint_dir>/.mmsk-checkpoint``, that says the folder is mmsk's.

- A folder that does not exist, or is empty, is taken: mmsk writes the marker
  (recording whether it created the folder) when training begins.
- A folder holding the marker is mmsk's: a fit that was killed resumes from it.
- Any other folder (it holds files and no marker) is refused before training.

When a fit completes, mmsk removes the sub-folder and the marker, and the
folder itself only if mmsk created it and nothing else is left in it.  A fit
that raised keeps its backup, so running it again resumes.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from mmsk import _backend
from mmsk.exceptions import ParameterError

MARKER = ".mmsk-checkpoint"
BACKUP = "keras-backup"
_FORMAT = "mmsk-checkpoint"
_MAX_MARKER_BYTES = 4096


class CheckpointFolder:
    """The folder behind ``checkpoint_dir``; checks it on creation, writes nothing.

    Parameters
    ----------
    path : str or path-like
        The ``checkpoint_dir`` setting.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(os.fspath(path))
        self.marker = self.path / MARKER
        self.backup = self.path / BACKUP
        self.created = False
        self.state()

    def _refuse(self, why: str) -> ParameterError:
        return ParameterError(
            f"checkpoint_dir={os.fspath(self.path)!r} {why}; expected a new or empty folder, "
            f"or one that an earlier mmsk fit used (it holds mmsk's {MARKER} marker). mmsk "
            "keeps its training backup there and removes it after fit, so it never writes "
            "into a folder of yours: choose a new folder"
        )

    def state(self) -> dict[str, Any] | None:
        """The marker's content if the folder is mmsk's, None if it is new or empty.

        Raises ParameterError for a folder mmsk must not use.
        """
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._refuse(f"cannot be read ({exc})") from exc
        if not stat.S_ISDIR(info.st_mode):
            raise self._refuse("is not a folder")
        entries = sorted(os.listdir(self.path))
        if not entries:
            return None
        if MARKER not in entries:
            shown = ", ".join(repr(e) for e in entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise self._refuse(f"holds {len(entries)} entries that mmsk did not write ({shown})")
        return self._read_marker()

    def _read_marker(self) -> dict[str, Any]:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.marker, flags)
        except OSError as exc:
            raise self._refuse(f"has a {MARKER} that cannot be read ({exc})") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise self._refuse(f"has a {MARKER} that is not a regular file")
            raw = os.read(fd, _MAX_MARKER_BYTES + 1)
        finally:
            os.close(fd)
        try:
            content = json.loads(raw.decode("utf-8")) if len(raw) <= _MAX_MARKER_BYTES else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            content = None
        if not isinstance(content, dict) or content.get("format") != _FORMAT:
            raise self._refuse(f"has a {MARKER} file that mmsk did not write")
        if os.path.lexists(self.backup) and not stat.S_ISDIR(os.lstat(self.backup).st_mode):
            raise self._refuse(f"has a {BACKUP} entry that is not a folder")
        return content

    def claim(self) -> None:
        """Create the folder if needed and write the marker (when training begins)."""
        content = self.state()
        if content is not None:
            self.created = bool(content.get("created"))
            return
        self.created = not os.path.lexists(self.path)
        os.makedirs(self.path, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(self.marker, flags, 0o644), "w", encoding="utf-8") as fh:
            json.dump({"format": _FORMAT, "version": 1, "created": self.created}, fh)

    def release(self) -> None:
        """Remove what mmsk wrote: the backup, the marker, and a folder mmsk created."""
        if os.path.lexists(self.backup) and stat.S_ISDIR(os.lstat(self.backup).st_mode):
            shutil.rmtree(self.backup)
        if os.path.lexists(self.marker) and stat.S_ISREG(os.lstat(self.marker).st_mode):
            os.remove(self.marker)
        if self.created:
            try:
                os.rmdir(self.path)  # only when empty: files added since are kept
            except OSError:
                pass


@functools.cache
def _backup_class() -> type:
    keras = _backend.keras()

    class Backup(keras.callbacks.BackupAndRestore):  # type: ignore[name-defined]
        """``BackupAndRestore`` into a :class:`CheckpointFolder`'s sub-folder."""

        def __init__(self, folder: CheckpointFolder) -> None:
            super().__init__(backup_dir=os.fspath(folder.backup), delete_checkpoint=False)
            self.folder = folder

        def on_train_begin(self, logs: Any = None) -> None:
            self.folder.claim()
            super().on_train_begin(logs)

        def on_train_end(self, logs: Any = None) -> None:  # only after a completed fit
            super().on_train_end(logs)
            self.folder.release()

    return Backup


def backup_callback(checkpoint_dir: str | os.PathLike) -> Any:
    """A Keras callback backing up training in ``checkpoint_dir`` (checked first).

    Raises
    ------
    ParameterError
        ``checkpoint_dir`` is not a folder, or holds files that mmsk did not write.
    """
    return _backup_class()(CheckpointFolder(checkpoint_dir))
