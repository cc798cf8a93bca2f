"""Process-wide settings: :func:`set_config`, :func:`get_config`, :func:`config_context`.

Unlike scikit-learn's thread-local configuration, these settings are shared by
every thread of the process, because mmsk decodes files on a thread pool.
Other processes (a search with ``n_jobs``, a server's workers) read their
default from an environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral
from typing import Any

from mmsk.exceptions import ParameterError

__all__ = ["config_context", "get_config", "set_config"]

MAX_INPUT_FILE_BYTES = 128 * 2**20  # 128 MiB: a 12-minute stereo CD-quality WAV, any photo
_ENV = {"max_input_file_bytes": "MMSK_MAX_INPUT_FILE_BYTES"}
_DEFAULTS: dict[str, Any] = {"max_input_file_bytes": MAX_INPUT_FILE_BYTES}
_settings: dict[str, Any] = {}


def _check(name: str, value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < 1:
        raise ParameterError(
            f"Expected a positive integer number of bytes for {name}. Received: {source}"
        )
    return int(value)


def get_config() -> dict[str, Any]:
    """The current mmsk settings.

    Returns
    -------
    dict
        ``max_input_file_bytes``: the largest file (in bytes) that mmsk reads
        from an image or audio path in a table; larger files are refused with
        an :class:`~mmsk.exceptions.InputError`.  Its default, 128 MiB, can be
        changed for new processes with the environment variable
        ``MMSK_MAX_INPUT_FILE_BYTES``.

    Examples
    --------
    >>> import mmsk
    >>> mmsk.get_config()["max_input_file_bytes"] >= 1
    True
    """
    config = dict(_DEFAULTS)
    for name, variable in _ENV.items():
        raw = os.environ.get(variable)
        if raw is not None and name not in _settings:
            try:
                value = int(raw.strip())
            except ValueError:
                value = 0
            config[name] = _check(name, value, f"{variable}={raw!r} in the environment")
    return {**config, **_settings}


def set_config(*, max_input_file_bytes: int | None = None) -> None:
    """Change mmsk's settings for the whole process (every thread).

    Parameters
    ----------
    max_input_file_bytes : int, optional
        The largest image or audio file mmsk reads from a path in a table, in
        bytes (default 128 MiB).  Raise it to read larger files; it applies to
        ``fit`` and ``predict`` on a raw DataFrame as well as to the
        preprocessors.  None leaves it as it is.

    Examples
    --------
    >>> import mmsk
    >>> before = mmsk.get_config()["max_input_file_bytes"]
    >>> mmsk.set_config(max_input_file_bytes=2 * 2**30)  # 2 GiB
    >>> mmsk.get_config()["max_input_file_bytes"]
    2147483648
    >>> mmsk.set_config(max_input_file_bytes=before)
    """
    if max_input_file_bytes is not None:
        _settings["max_input_file_bytes"] = _check(
            "max_input_file_bytes", max_input_file_bytes, repr(max_input_file_bytes)
        )


@contextmanager
def config_context(*, max_input_file_bytes: int | None = None) -> Iterator[None]:
    """Change mmsk's settings inside a ``with`` block, then restore them.

    The change is process-wide while the block runs (see :func:`set_config`).

    Parameters
    ----------
    max_input_file_bytes : int, optional
        See :func:`set_config`.

    Examples
    --------
    >>> import mmsk
    >>> with mmsk.config_context(max_input_file_bytes=1024):
    ...     mmsk.get_config()["max_input_file_bytes"]
    1024
    """
    saved = dict(_settings)
    set_config(max_input_file_bytes=max_input_file_bytes)
    try:
        yield
    finally:
        _settings.clear()
        _settings.update(saved)
