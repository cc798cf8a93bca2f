"""Shared machinery of the loaders: the bundled files, the cache folder, the Bunch."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mmsk.exceptions import ParameterError

ENV_DATA_HOME = "MMSK_DATA"
_DONE = ".complete"  # written last in an extracted folder: it is whole


def get_data_home(data_home: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder where mmsk writes data set files, creating it if needed.

    It is, in order: ``data_home`` if given, the ``MMSK_DATA`` environment
    variable if set, else ``~/mmsk_data``.  Like scikit-learn's
    :func:`sklearn.datasets.get_data_home`.

    Parameters
    ----------
    data_home : str or path-like, optional

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> from mmsk.datasets import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     get_data_home(tmp).is_dir()
    True
    """
    if data_home is None:
        data_home = os.environ.get(ENV_DATA_HOME) or Path("~") / "mmsk_data"
    path = Path(data_home).expanduser()
    if path.exists() and not path.is_dir():
        raise ParameterError(
            f"Expected data_home to be a folder (or a path where one can be made). "
            f"Received: data_home={os.fspath(path)!r}, which is a file"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(
            f"Expected data_home to be a folder mmsk can create and write. Received: "
            f"data_home={os.fspath(path)!r} ({type(exc).__name__}: {exc.strerror or exc})"
        ) from exc
    return path


def clear_data_home(data_home: str | os.PathLike[str] | None = None) -> None:
    """Delete the data home folder (see :func:`get_data_home`) and all it holds.

    Parameters
    ----------
    data_home : str or path-like, optional
    """
    shutil.rmtree(get_data_home(data_home))


def _data_file(name: str) -> Any:
    return resources.files("mmsk.datasets") / "data" / name


def load_arrays(name: str) -> dict[str, np.ndarray]:
    """Every array of the bundled ``data/<name>``, read into memory (no pickles)."""
    with _data_file(name).open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def data_version(name: str) -> str:
    """Short content hash of a bundled file: names the cache folder made from it."""
    return hashlib.sha256(_data_file(name).read_bytes()).hexdigest()[:10]


def load_descr(name: str) -> str:
    """Text of the bundled ``descr/<name>``."""
    return (resources.files("mmsk.datasets") / "descr" / name).read_text(encoding="utf-8")


def extract(folder: Path, write: Callable[[Path], None]) -> Path:
    """Fill ``folder`` once with ``write(tmp)``; a folder found whole is reused.

    Files are written into a temporary sibling folder that is renamed into
    place at the end, so an interrupted or concurrent extraction never
    leaves a half-filled ``folder`` behind.
    """
    if (folder / _DONE).exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        write(tmp)
        (tmp / _DONE).write_text("")
        if folder.exists() and not (folder / _DONE).exists():
            shutil.rmtree(folder)  # not made by this function (which renames whole folders)
        try:
            tmp.rename(folder)
        except OSError:
            if not (folder / _DONE).exists():  # unless another process won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def frame_or_arrays(
    columns: dict[str, Any],
    target: np.ndarray,
    target_name: str,
    *,
    as_frame: bool,
) -> dict[str, Any]:
    """``data``, ``target``, ``frame`` and ``feature_names`` as scikit-learn's loaders give them.

    With ``as_frame=True``: a DataFrame of object columns, a Series, and
    both joined; else a 2-D object array of cells (mmsk reads it as columns
    ``x0, x1, ...``), the target array, and no frame.
    """
    names = list(columns)
    if as_frame:
        import pandas as pd

        data = pd.DataFrame(
            {
                # text keeps pandas' string dtype; arrays and paths are object cells
                k: pd.Series(v)
                if isinstance(v, np.ndarray) and v.dtype.kind == "U"
                else pd.Series(list(v), dtype=object)
                for k, v in columns.items()
            }
        )
        series = pd.Series(target, name=target_name)
        return {
            "data": data,
            "target": series,
            "frame": pd.concat([data, series], axis=1),
            "feature_names": names,
        }
    cells = np.empty((len(target), len(names)), dtype=object)
    for j, values in enumerate(columns.values()):
        for i, value in enumerate(values):
            cells[i, j] = value
    return {"data": cells, "target": target, "frame": None, "feature_names": names}
