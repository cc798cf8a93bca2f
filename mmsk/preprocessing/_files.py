"""Reading a file named in a table, which may come from anyone: checked, then bounded.

A path in a DataFrame cell can name ``/dev/zero``, a FIFO, a 20 GB sparse file
or a symlink to any of them.  :func:`open_checked` opens it without blocking
(``O_NONBLOCK``: a FIFO with no writer does not wait), then checks the open
descriptor with ``os.fstat``, so what is checked is what is read (no race
with a rename, and a symlink is judged by its target):

- it must be a regular file (not a FIFO, device, socket or directory);
- its size must be at most ``mmsk.get_config()["max_input_file_bytes"]``.

:func:`read_checked` then reads at most that many bytes plus one, so a file
that grows while it is read cannot exhaust memory.
"""

from __future__ import annotations

import io
import os
import stat
from typing import Any

from mmsk._config import get_config
from mmsk.exceptions import InputError

_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _article(what: str) -> str:
    return "an" if what[:1] in "aeiou" else "a"


def _directory(p: str, what: str) -> InputError:
    return InputError(f"{p!r} is a directory; expected a path to {_article(what)} {what} file")


def _too_big(p: str, size: int, limit: int, what: str, growing: bool = False) -> InputError:
    how = "grew over" if growing else f"is {size} bytes, over"
    return InputError(
        f"{p!r} {how} the limit of {limit} bytes for an input file; expected {_article(what)} "
        f"{what} file of at most {limit} bytes. Raise the limit with "
        "mmsk.set_config(max_input_file_bytes=...) if the file is trusted"
    )


def open_checked(path: Any, what: str, limit: int | None = None) -> io.BufferedReader:
    """Open ``path`` for reading if it is a regular file of at most ``limit`` bytes.

    Parameters
    ----------
    path : str or path-like
        The file named in the table.
    what : str
        The kind of file expected (``"image"``, ``"audio"``), for messages.
    limit : int, optional
        The size cap; by default ``mmsk.get_config()["max_input_file_bytes"]``.

    Returns
    -------
    A binary file object; the caller closes it.

    Raises
    ------
    InputError
        The file is missing, cannot be opened, is not a regular file, or is
        over the cap.  The message names the path and what was expected.
    """
    p = os.fspath(path)
    limit = get_config()["max_input_file_bytes"] if limit is None else limit
    try:
        fd = os.open(p, _FLAGS)
    except FileNotFoundError as exc:
        raise InputError(
            f"file not found: {p!r}; expected a path to an existing {what} file"
        ) from exc
    except IsADirectoryError as exc:  # Windows; POSIX opens a folder and fstat tells
        raise InputError(
            f"{p!r} is a directory; expected a path to {_article(what)} {what} file"
        ) from exc
    except (OSError, ValueError) as exc:  # a socket (ENXIO), no permission, a NUL in the path
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(
            f"{p!r} cannot be opened ({why}); expected a readable {what} file"
        ) from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(
                f"{p!r} is a directory; expected a path to {_article(what)} {what} file"
            )
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise InputError(
                f"{p!r} is {kind}, not a regular file; expected a path to "
                f"{_article(what)} {what} file"
            )
        if info.st_size > limit:
            raise _too_big(p, info.st_size, limit, what)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_checked(path: Any, what: str, limit: int | None = None) -> bytes:
    """The bytes of ``path`` after :func:`open_checked`'s checks; never more than ``limit``.

    An empty file is an :class:`~mmsk.exceptions.InputError` too.

    Examples
    --------
    >>> import tempfile, os
    >>> from mmsk.preprocessing._files import read_checked
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "a.bin")
    ...     with open(path, "wb") as fh:
    ...         _ = fh.write(b"abc")
    ...     read_checked(path, "image")
    b'abc'
    """
    p = os.fspath(path)
    limit = get_config()["max_input_file_bytes"] if limit is None else limit
    with open_checked(p, what, limit) as fh:
        # The size was checked; read one byte more to see whether it grew since.
        size = os.fstat(fh.fileno()).st_size
        chunks, total, want = [], 0, min(size, limit) + 1
        while total <= limit:
            chunk = fh.read(min(want, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            want = 1 << 20
    if total > limit:
        raise _too_big(p, total, limit, what, growing=True)
    if total == 0:
        raise InputError(f"{p!r} is empty (0 bytes); expected a non-empty {what} file")
    return b"".join(chunks)
