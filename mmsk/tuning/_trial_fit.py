"""Fold models a search keeps: on disk with a ``directory``, in memory for Hyperband.

The search fits clones of the user's estimator itself (no wrapper): this
module only decides, per fold, whether a fitted model is already at hand and
keeps the ones it trains.  A fold is named by a fingerprint of the search's
data (rows and content, hashed with joblib once per search), the fold's
training rows and all the estimator's settings, so

* a resumed or distributed search reads finished trials back from the
  trial's folder instead of training them again (kept with ``mmsk.save``: a
  zip of JSON, npz and ``.keras``, no pickle, as the folder may be shared);
* Hyperband continues a trial from the fold model of the trial it extends
  (``warm_start``: only the extra epochs are trained), from the folder or,
  without one, from memory;
* a fit error is recorded next to the fold, and a resumed search records
  the same error again instead of training again.

The folder is not trusted: a fold file that ``mmsk.load`` refuses (damaged,
an untrusted type, not mmsk's format) or that holds another estimator is
trained again, with a warning.  An estimator that ``mmsk.load`` would not
read back without ``trusted=`` (a user-defined class) is not kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone

from mmsk.exceptions import MmskError, PersistenceError


class TrialFailedError(MmskError, RuntimeError):
    """A fold failed in an earlier run of the search; the message is its error."""


def data_fingerprint(X: Any, y: Any, fit_params: dict[str, Any]) -> str:
    """A hash of the search's data (rows and content): new data gets a new name."""
    import joblib

    return str(joblib.hash((X, y, sorted(fit_params.items())), hash_name="sha1"))


def _canonical(value: Any) -> Any:
    """``value`` as JSON data that is equal for equal settings, in any process."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}  # json sorts the keys
    if isinstance(value, type):
        return {"type": f"{value.__module__}:{value.__qualname__}"}
    name = f"{type(value).__module__}:{type(value).__qualname__}"
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if hasattr(value, "get_params"):
        return {"object": name, "params": _canonical(value.get_params(deep=False))}
    return {"object": name, "repr": re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))}


def settings_key(params: dict[str, Any]) -> str:
    """A name for a trial's settings: a fold file is only reused for the same ones."""
    text = json.dumps(_canonical(params), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def final_estimator(estimator: Any) -> Any:
    """The last step of a Pipeline (recursively), or the estimator itself."""
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[-1][1]
    return estimator


def _settings(estimator: Any) -> Any:
    """What must match between a kept fold model and the estimator it stands for."""
    params = estimator.get_params(deep=True)
    return _canonical({k: v for k, v in params.items() if not k.endswith("checkpoint_dir")})


def fold_name(fingerprint: str, train: Any, estimator: Any) -> str:
    """``fold-<data and rows>-<settings>``: the name of one fold of one setting."""
    rows = np.asarray(train)
    digest = hashlib.sha1(fingerprint.encode("ascii"))
    digest.update(str(rows.dtype).encode("ascii") + rows.tobytes())
    settings = json.dumps(_settings(estimator), sort_keys=True, default=str)
    return f"fold-{digest.hexdigest()[:16]}-{settings_key({'s': settings})}"


def read_error(folder: str, name: str) -> str | None:
    """The error a fold recorded in an earlier run, if any (None if unreadable)."""
    from mmsk.preprocessing._files import read_checked

    path = Path(folder) / f"{name}.error"
    if not os.path.lexists(path):
        return None
    try:
        return read_checked(path, "error record", limit=2**16).decode("utf-8", "replace")
    except MmskError:
        return None  # a FIFO, a huge file...: ignored, the fold is trained again


def record_error(folder: str, name: str, error: str) -> None:
    """Write a fold's fit error (a traceback) next to where its model would be."""
    os.makedirs(folder, exist_ok=True)
    (Path(folder) / f"{name}.error").write_text(error[-(2**15) :], encoding="utf-8")


def keep(folder: str, name: str, estimator: Any) -> None:
    """Keep a fold model with ``mmsk.save``, if ``mmsk.load`` will read it back.

    One that cannot be written, or that names types ``load`` does not trust
    by default (a user-defined class), is not kept: it is trained again on
    resume, as the cache never passes ``trusted=``.
    """
    from mmsk import get_untrusted_types, save

    os.makedirs(folder, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=folder, suffix=".tmp")
    written = os.path.join(tmp, "fold.zip")
    try:
        save(estimator, written)
        if not get_untrusted_types(written):
            os.replace(written, os.path.join(folder, f"{name}.zip"))  # never half a model
    except PersistenceError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def kept(folder: str, name: str, expected: Any, continued: bool = False) -> Any | None:
    """The fold model kept under ``name``, or None (with a warning) when it cannot be trusted.

    ``continued``: the model of the Hyperband trial this one extends, which
    differs from ``expected`` only in its ``epochs``.
    """
    from mmsk import load

    path = Path(folder) / f"{name}.zip"
    if not os.path.lexists(path):
        return None
    try:
        estimator = load(path)
        if type(estimator) is not type(expected):
            raise PersistenceError(
                f"it holds a {type(estimator).__name__}; expected a {type(expected).__name__}"
            )
        if continued:
            expected = clone(expected)
            final_estimator(expected).set_params(epochs=final_estimator(estimator).epochs)
        if _settings(estimator) != _settings(expected):
            raise PersistenceError("its settings differ from the trial's")
    except Exception as exc:
        warnings.warn(
            f"the kept fold model {os.fspath(path)!r} cannot be used and is trained again: "
            f"{type(exc).__name__}: {exc}",
            stacklevel=3,
        )
        return None
    return estimator
