"""``mmsk.save``/``mmsk.load``: estimators and pipelines as JSON, npz and ``.keras``, no pickle.

A save is a folder, or a zip file when the path ends in ``.zip``, holding:

- ``.mmsk-save``: a marker, so that :func:`save` replaces only its own saves;
- ``config.json``: the format version, the versions that wrote it, the plugin
  distributions it needs, and the object: each estimator's exact class name,
  ``get_params(deep=False)`` and learned state, recursively (pipelines,
  preprocessors, encoders, label encoders, ...);
- ``arrays.npz``: the numpy arrays of that state (read with ``allow_pickle=False``);
- ``models/<n>.keras``: the Keras models, checked, then loaded with ``safe_mode=True``.

A file is untrusted data: :func:`load` creates only classes of an explicit
trusted set (see :mod:`mmsk._persist._trust`) plus those the caller names in
``trusted=``, reads every member within limits, and checks the state it sets.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mmsk._persist._codec import (
    Decoder,
    Encoder,
    function_names,
    missing_plugin_hint,
    node_names,
    type_names,
)
from mmsk._persist._keras import foreign_classes, load_keras, read_keras
from mmsk._persist._limits import DEFAULT_LIMITS, Limits, parse_json, read_npz
from mmsk._persist._store import ARRAYS, CONFIG, MODEL_FILE, Reader, open_save, write
from mmsk._persist._trust import (
    normalize,
    plugin_entries,
    plugin_packages,
    resolve,
    trusted_by_default,
)
from mmsk.exceptions import MmskError, PersistenceError, UnsafeFileError

__all__ = ["DEFAULT_LIMITS", "FORMAT_VERSION", "Limits", "get_untrusted_types", "load", "save"]

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


def _plugins(encoder: Encoder) -> list[dict[str, str]]:
    """The plugin distributions that provide the classes and component names used."""
    out = []
    for target, (group, name, dist, version) in sorted(plugin_entries().items()):
        if dist == "mmsk":
            continue
        if target in encoder.classes or (group, name) in encoder.components:
            out.append({"group": group, "name": name, "class": target,
                        "distribution": dist, "version": version})  # fmt: skip
    return out


def save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Save a fitted (or unfitted) estimator or pipeline without pickle.

    Parameters
    ----------
    obj : estimator or Pipeline
        An mmsk estimator or transformer, or any scikit-learn estimator or
        pipeline built of them.  Settings that cannot be written as data
        (Keras callbacks, functions other than numpy ufuncs, classes that
        cannot be found again by their name) are a
        :class:`~mmsk.exceptions.PersistenceError` naming them.
    path : str or path-like
        A folder, or a zip file if the name ends in ``.zip``.  A new path, an
        empty folder, or an earlier mmsk save (which is replaced); anything
        else is refused and left untouched.  The new save is written aside
        and renamed into place, so an error never leaves half a save.

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
        "plugins": _plugins(encoder),
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


def _limits(max_member_bytes: int | None, max_total_bytes: int | None,
            max_config_bytes: int | None) -> Limits:  # fmt: skip
    values = {}
    for key, value in (("max_member_bytes", max_member_bytes),
                       ("max_total_bytes", max_total_bytes),
                       ("max_config_bytes", max_config_bytes)):  # fmt: skip
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise PersistenceError(f"Expected a positive integer. Received: {key}={value!r}")
        values[key] = value
    return Limits(**{**DEFAULT_LIMITS.__dict__, **values})


def _read_config(reader: Reader) -> Any:
    config = parse_json(reader.read(CONFIG), CONFIG, reader.budget.limits, reader.label)
    _check_header(config, reader.label)
    return config


def _model_names(config: Any) -> list[str]:
    names = node_names(config["root"], ("keras",), "file")
    return sorted(n for n in names if MODEL_FILE.fullmatch(n))


def get_untrusted_types(
    path: str | os.PathLike[str],
    *,
    max_member_bytes: int | None = None,
    max_total_bytes: int | None = None,
    max_config_bytes: int | None = None,
) -> list[str]:
    """The types a saved file names that :func:`load` does not trust by default.

    Reads the file's configuration (and its Keras models' configurations)
    within the same limits as :func:`load`, without importing any module the
    file names and without loading a model.  Review each name; pass the ones
    you trust to ``mmsk.load(path, trusted=[...])``.

    Parameters
    ----------
    path : str or path-like
        A folder or zip file written by :func:`save`.
    max_member_bytes, max_total_bytes, max_config_bytes : int, optional
        As for :func:`load`.

    Returns
    -------
    list of str
        Sorted exact names ``"module:qualname"``: classes of the saved objects
        and ``type`` settings, and Keras layer classes from packages other
        than Keras, mmsk and installed mmsk plugins.  Empty when ``load``
        needs no ``trusted=``.

    Examples
    --------
    >>> import tempfile, mmsk
    >>> from sklearn.preprocessing import StandardScaler
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = mmsk.save(StandardScaler().fit([[0.0], [2.0]]), tmp + "/scaler")
    ...     mmsk.get_untrusted_types(tmp + "/scaler")
    []
    """
    source = Path(os.fspath(path))
    limits = _limits(max_member_bytes, max_total_bytes, max_config_bytes)
    with open_save(source, limits) as reader:
        try:
            config = _read_config(reader)
            names = type_names(config["root"]) | function_names(config["root"])
            packages = plugin_packages()
            for member in _model_names(config):
                where = f"{reader.label}: {member}"
                _, model_config = read_keras(reader.read(member), reader.budget, where)
                names |= {
                    n for n in foreign_classes(model_config)
                    if n.split(".", 1)[0].split(":", 1)[0] not in packages
                }  # fmt: skip
            return sorted(n for n in names if not trusted_by_default(n))
        except MmskError:
            raise
        except Exception as exc:  # the last net: a crafted file never escapes as a raw error
            raise PersistenceError(
                f"{reader.label} cannot be read ({type(exc).__name__}: {str(exc)[:300]})"
            ) from exc


def load(
    path: str | os.PathLike[str],
    trusted: Iterable[str | type] | None = None,
    *,
    max_member_bytes: int | None = None,
    max_total_bytes: int | None = None,
    max_config_bytes: int | None = None,
) -> Any:
    """Load what :func:`save` wrote, running no code from the file.

    Parameters
    ----------
    path : str or path-like
        The folder or zip file.
    trusted : list of str, optional
        Exact class names ``"module:qualname"`` to trust for this load, in
        addition to the default trusted set (mmsk's, scikit-learn's and
        installed plugins' classes, NumPy scalar types).  Review them first
        with :func:`get_untrusted_types`.
    max_member_bytes : int, default=1 GiB
        Largest uncompressed member (an array, a model, its weights).
    max_total_bytes : int, default=4 GiB
        Largest uncompressed total of everything read.
    max_config_bytes : int, default=64 MiB
        Largest ``config.json`` (the save's and each Keras model's).

    Returns
    -------
    The estimator or pipeline, fitted as it was saved.

    Raises
    ------
    UnsafeFileError
        The file names a class that is not trusted (the message lists them),
        sets state that would replace a method or setting, holds a link, a
        FIFO, a duplicate or an escaping member, or a Keras model with a
        Lambda layer, a serialized function or a class outside Keras' and
        the trusted packages' registered layers.
    PersistenceError
        The file is not an mmsk save, is damaged or truncated, exceeds a
        limit, holds state that does not fit together, needs a plugin that
        is not installed (the message names its distribution), or was
        written by a newer mmsk (a higher ``format_version``).

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
    extra = normalize(trusted)
    limits = _limits(max_member_bytes, max_total_bytes, max_config_bytes)
    with open_save(source, limits) as reader:
        try:
            return _load(reader, extra)
        except MmskError:
            raise
        except RecursionError as exc:
            raise PersistenceError(f"{reader.label}: nested too deeply to load") from exc
        except Exception as exc:  # the last net: a crafted file never escapes as a raw error
            raise PersistenceError(
                f"{reader.label} cannot be loaded ({type(exc).__name__}: {str(exc)[:300]})"
            ) from exc


def _load(reader: Reader, extra: frozenset[str]) -> Any:
    where = reader.label
    config = _read_config(reader)
    plugins = config.get("plugins") if isinstance(config.get("plugins"), list) else []
    named = type_names(config["root"]) | function_names(config["root"])
    untrusted = sorted(n for n in named if n not in extra
                       and not trusted_by_default(n))  # fmt: skip
    _refuse_untrusted(untrusted, plugins, where)
    for name in sorted(type_names(config["root"])):  # every class found before any is made
        resolve(name, extra, where)
    arrays = read_npz(reader.read(ARRAYS), reader.budget, where)

    def load_model(name: str, label: str) -> Any:
        return load_keras(reader.read(name), reader.budget, label, extra)

    return Decoder(arrays, load_model, where, extra, plugins).decode(config["root"])


def _refuse_untrusted(untrusted: list[str], plugins: list[Any], where: str) -> None:
    if not untrusted:
        return
    from importlib import metadata

    for name in untrusted:
        hint = missing_plugin_hint(plugins, cls=name)
        if hint:
            dist = next(p.get("distribution") for p in plugins
                        if isinstance(p, dict) and p.get("class") == name)  # fmt: skip
            try:
                metadata.distribution(str(dist))
            except (metadata.PackageNotFoundError, ValueError):
                raise PersistenceError(
                    f"{where}: the file needs the plugin class {name!r}{hint}"
                ) from None
    shown = ", ".join(repr(n) for n in untrusted[:20]) + (" ..." if len(untrusted) > 20 else "")
    raise UnsafeFileError(
        f"{where}: the file names the Python class{'es' if len(untrusted) > 1 else ''} {shown}, "
        "which mmsk.load does not trust by default and refuses, as creating them could run "
        "code from the file's author. Review them with mmsk.get_untrusted_types(path); if "
        "you trust them, pass them as mmsk.load(path, trusted=[...])"
    )


def _check_header(config: Any, where: str) -> None:
    if not isinstance(config, dict) or config.get("format") != FORMAT or "root" not in config:
        raise PersistenceError(
            f"{where}: Expected a save written by mmsk.save ({CONFIG} with format 'mmsk'). "
            f"Received: {CONFIG} without it"
        )
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PersistenceError(
            f"{where}: Expected a positive integer format_version. Received: {version!r:.40}"
        )
    if version > FORMAT_VERSION:
        written_by = config.get("written_by")
        writer = str(written_by.get("mmsk"))[:40] if isinstance(written_by, dict) else "?"
        from mmsk import __version__

        raise PersistenceError(
            f"{where} was written by mmsk {writer} in format version {version}; this mmsk "
            f"({__version__}) reads format versions up to {FORMAT_VERSION}. Expected a file "
            "from this or an older mmsk: upgrade mmsk to load it"
        )
