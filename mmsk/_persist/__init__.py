"""``mmsk.save``/``mmsk.load``: estimators and pipelines as JSON, npz and ``.keras``, no pickle.

A save is a folder, or a zip file when the path ends in ``.zip``, holding:

- ``config.json``: the format version, the versions that wrote it, and the
  object: each estimator's class, ``get_params(deep=False)`` and learned state,
  recursively (pipelines, preprocessors, encoders, label encoders, ...);
- ``arrays.npz``: the numpy arrays of that state (read with ``allow_pickle=False``);
- ``models/<n>.keras``: the Keras models, loaded with ``safe_mode=True``.

Loading creates only classes of mmsk, scikit-learn and installed plugins, and
refuses Keras configurations that would run code (Lambda layers, unknown
classes) with :class:`~mmsk.exceptions.UnsafeFileError`.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mmsk._persist._codec import Decoder, Encoder
from mmsk._persist._store import ARRAYS, CONFIG, open_save, write
from mmsk.exceptions import PersistenceError

__all__ = ["FORMAT_VERSION", "load", "save"]

FORMAT = "mmsk"
FORMAT_VERSION = 1  # raise when a reader of the previous version could misread a new file


def _versions() -> dict[str, str]:
    import sklearn

    from mmsk import __version__

    out = {"mmsk": __version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__}
    keras = __import__("sys").modules.get("keras")
    if keras is not None:
        out["keras"] = keras.__version__
    return out


def save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Save a fitted (or unfitted) estimator or pipeline without pickle.

    Parameters
    ----------
    obj : estimator or Pipeline
        An mmsk estimator or transformer, or any scikit-learn estimator or
        pipeline built of them.  Settings that cannot be written as data
        (Keras callbacks, functions other than numpy ufuncs, classes outside
        mmsk, scikit-learn and installed plugins) are a
        :class:`~mmsk.exceptions.PersistenceError` naming them.
    path : str or path-like
        A folder, or a zip file if the name ends in ``.zip``.  An earlier save
        at ``path`` is replaced; the new one is written aside and renamed into
        place, so an error never leaves half a save.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, numpy as np, mmsk
    >>> X = np.random.default_rng(0).normal(size=(40, 3))
    >>> clf = mmsk.MultimodalClassifier(epochs=1, random_state=0).fit(X, X[:, 0] > 0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = mmsk.save(clf, tmp + "/clf.zip")
    ...     same = mmsk.load(tmp + "/clf.zip")
    >>> bool(np.array_equal(same.predict_proba(X), clf.predict_proba(X)))
    True
    """
    encoder = Encoder()
    root = encoder.encode(obj, "")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "written_by": _versions(),
        "root": root,
    }
    buffer = io.BytesIO()
    np.savez(buffer, **encoder.arrays)  # type: ignore[arg-type]
    members = {
        CONFIG: json.dumps(config, indent=1, allow_nan=False).encode("utf-8"),
        ARRAYS: buffer.getvalue(),
        **encoder.files,
    }
    target = Path(os.fspath(path))
    write(target, members)
    return target


def load(path: str | os.PathLike[str]) -> Any:
    """Load what :func:`save` wrote, running no code from the file.

    Parameters
    ----------
    path : str or path-like
        The folder or zip file.

    Returns
    -------
    The estimator or pipeline, fitted as it was saved.

    Raises
    ------
    UnsafeFileError
        The file names a Python class outside mmsk, scikit-learn and installed
        plugins, or its Keras model holds a Lambda layer, a serialized function
        or an unregistered class.
    PersistenceError
        The file is not an mmsk save, is damaged or truncated, misses a member,
        or was written by a newer mmsk (a higher ``format_version``).

    Examples
    --------
    >>> import tempfile, mmsk
    >>> from mmsk.preprocessing import TextVectorizer
    >>> vec = TextVectorizer(sequence_length=3).fit(["a red bus", "a dog"])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = mmsk.save(vec, tmp + "/vec")
    ...     mmsk.load(tmp + "/vec").transform(["a red dog"]).tolist()
    [[2, 3, 4]]
    """
    source = Path(os.fspath(path))
    with open_save(source) as reader:
        where = reader.label
        try:
            config = json.loads(reader.read(CONFIG).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PersistenceError(
                f"{where}: {CONFIG} is not valid JSON ({exc}); the file is damaged or truncated"
            ) from exc
        _check_header(config, where)
        try:
            with np.load(io.BytesIO(reader.read(ARRAYS)), allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (ValueError, OSError, EOFError) as exc:
            if isinstance(exc, PersistenceError):
                raise
            raise PersistenceError(
                f"{where}: {ARRAYS} cannot be read ({type(exc).__name__}: {exc}); the file is "
                "damaged, or holds pickled objects, which mmsk.load never reads"
            ) from exc
        return Decoder(arrays, reader.read, where).decode(config["root"])


def _check_header(config: Any, where: str) -> None:
    if not isinstance(config, dict) or config.get("format") != FORMAT or "root" not in config:
        raise PersistenceError(
            f"{where}: Expected a save written by mmsk.save ({CONFIG} with format 'mmsk'). "
            f"Received: {CONFIG} without it"
        )
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PersistenceError(
            f"{where}: Expected a positive integer format_version. Received: {version!r}"
        )
    if version > FORMAT_VERSION:
        writer = (config.get("written_by") or {}).get("mmsk", "a newer version")
        from mmsk import __version__

        raise PersistenceError(
            f"{where} was written by mmsk {writer} in format version {version}; this mmsk "
            f"({__version__}) reads format versions up to {FORMAT_VERSION}. Expected a file "
            "from this or an older mmsk: upgrade mmsk to load it"
        )
