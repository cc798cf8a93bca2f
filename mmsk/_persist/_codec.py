"""Objects <-> JSON nodes, arrays kept aside for ``arrays.npz``, Keras models as ``.keras``.

A JSON object in the configuration is always a tagged node ``{"$": kind, ...}``;
JSON lists are Python lists and scalars are themselves.  Estimators are
written as their class name, ``get_params(deep=False)`` and their learned
state (``__getstate__`` without the parameters), recursively.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from mmsk._batch import ModalitySpec
from mmsk._persist._allow import (
    class_name,
    is_builtin_type,
    resolve_class,
    resolve_ufunc,
)
from mmsk._persist._keras import load_keras, save_keras
from mmsk.exceptions import MmskError, PersistenceError, UnsafeFileError

MODEL_FILE = re.compile(r"models/[0-9]{1,6}\.keras")


def _is_keras_model(obj: Any) -> bool:
    keras = __import__("sys").modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


class Encoder:
    """Turn an object into JSON nodes; collect arrays and model files on the way."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.files: dict[str, bytes] = {}

    def _fail(self, value: Any, where: str, why: str = "") -> PersistenceError:
        return PersistenceError(
            f"{where}: cannot save a {type(value).__module__}.{type(value).__qualname__}"
            f"{why}. Expected settings and state made of numbers, strings, lists, dicts, "
            "numpy arrays, Keras models and scikit-learn/mmsk estimators"
        )

    def model(self, data: bytes) -> dict[str, Any]:
        name = f"models/{len(self.files)}.keras"
        self.files[name] = data
        return {"$": "keras", "file": name}

    def encode(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and type(value) is int:
            return value
        if isinstance(value, float) and type(value) is float:
            return value if math.isfinite(value) else {"$": "float", "value": repr(value)}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"$": "tuple", "items": self.encode(list(value), where)}
        if isinstance(value, dict):
            if set(value) == {"keras_bytes"} and isinstance(value["keras_bytes"], bytes):
                return self.model(value["keras_bytes"])  # an estimator's pickled model_
            return {
                "$": "dict",
                "items": [
                    [self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                    for k, v in value.items()
                ],
            }
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if isinstance(value, np.generic):
            return {
                "$": "scalar",
                "dtype": value.dtype.str,
                "value": self.encode(value.item(), where),
            }
        if isinstance(value, np.dtype):
            if value.fields is not None or value.kind == "V":
                raise self._fail(value, where, " (a structured dtype)")
            return {"$": "dtype", "name": value.str}
        if isinstance(value, ModalitySpec):
            return {"$": "spec", **value.to_dict()}
        if isinstance(value, PurePath):
            return {"$": "path", "value": os.fspath(value)}
        if isinstance(value, np.random.RandomState):
            return {"$": "random_state", "state": self.encode(value.get_state(), where)}
        if isinstance(value, np.ufunc):
            return {"$": "ufunc", "name": value.__name__}
        if isinstance(value, type):
            return self._type(value, where)
        if _is_keras_model(value):
            return self.model(save_keras(value))
        if hasattr(value, "get_params") and hasattr(value, "__getstate__"):
            return self.estimator(value, where)
        raise self._fail(value, where)

    def _array(self, value: np.ndarray, where: str) -> dict[str, Any]:
        if value.dtype.kind == "O":
            items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value.ravel().tolist())]
            return {"$": "objects", "shape": list(value.shape), "items": items}
        if value.dtype.kind not in "biufcUS" or value.dtype.fields is not None:
            raise self._fail(value, where, f" of dtype {value.dtype}")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = value
        return {"$": "array", "key": key}

    def _type(self, value: type, where: str) -> dict[str, Any]:
        if not (is_builtin_type(value) or issubclass(value, np.generic)):
            _loadable(value, where)
        return {"$": "type", "class": class_name(value)}

    def estimator(self, obj: Any, where: str) -> dict[str, Any]:
        cls = type(obj)
        _loadable(cls, where)
        params = obj.get_params(deep=False)
        state = {k: v for k, v in obj.__getstate__().items() if k not in params}
        name = cls.__name__
        return {
            "$": "estimator",
            "class": class_name(cls),
            "params": {
                k: self.encode(v, f"{where}.{k}" if where else f"{name}.{k}")
                for k, v in params.items()
            },
            "state": {
                k: self.encode(v, f"{where}.{k}" if where else f"{name}.{k}")
                for k, v in state.items()
            },
        }


class Decoder:
    """Turn JSON nodes back into objects; arrays and models come from the archive."""

    def __init__(self, arrays: Any, read: Any, source: str) -> None:
        self.arrays = arrays
        self.read = read  # member name -> bytes
        self.source = source

    def _bad(self, where: str, why: str) -> PersistenceError:
        return PersistenceError(f"{self.source}: {where}: {why}; the file is damaged")

    def decode(self, node: Any, where: str = "root") -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, dict) or not isinstance(node.get("$"), str):
            raise self._bad(where, f"Expected a value or a tagged object. Received: {node!r:.80}")
        kind = node["$"]
        try:
            if kind == "float":
                return float(node["value"])
            if kind == "tuple":
                return tuple(self.decode(node["items"], where))
            if kind == "dict":
                return {self.decode(k, where): self.decode(v, f"{where}[{k!r}]")
                        for k, v in node["items"]}  # fmt: skip
            if kind == "array":
                return self._array(node["key"], where)
            if kind == "objects":
                items = self.decode(node["items"], where)
                out = np.empty(len(items), dtype=object)
                out[:] = items
                return out.reshape(node["shape"])
            if kind == "scalar":
                return np.dtype(node["dtype"]).type(self.decode(node["value"], where))
            if kind == "dtype":
                return np.dtype(node["name"])
            if kind == "spec":
                return ModalitySpec(node["kind"], tuple(node["shape"]), node["dtype"],
                                    node["vocabulary_size"], tuple(node["columns"]))  # fmt: skip
            if kind == "path":
                return Path(node["value"])
            if kind == "random_state":
                rs = np.random.RandomState()
                rs.set_state(self.decode(node["state"], where))
                return rs
            if kind == "ufunc":
                return resolve_ufunc(node["name"], where)
            if kind == "type":
                return resolve_class(node["class"], where)
            if kind == "keras":
                return self._model(node["file"], where)
            if kind == "estimator":
                return self.estimator(node, where)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, PersistenceError):
                raise
            raise self._bad(
                where, f"a {kind!r} entry is malformed ({type(exc).__name__}: {exc})"
            ) from exc
        raise PersistenceError(
            f"{self.source}: {where}: unknown entry kind {kind!r}; the file is damaged or was "
            "written by a newer mmsk"
        )

    def _array(self, key: Any, where: str) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise self._bad(where, f"array {key!r} is missing from arrays.npz")
        return self.arrays[key]

    def _model(self, name: Any, where: str) -> Any:
        if not isinstance(name, str) or not MODEL_FILE.fullmatch(name):
            raise self._bad(where, f"Expected a model file 'models/<n>.keras'. Received: {name!r}")
        return load_keras(self.read(name), f"{self.source}: {where} ({name})")

    def estimator(self, node: dict[str, Any], where: str) -> Any:
        cls = resolve_class(node["class"], where)
        from sklearn.base import BaseEstimator

        if not issubclass(cls, BaseEstimator):
            raise PersistenceError(
                f"{self.source}: {where}: {node['class']!r} is not a scikit-learn estimator"
            )
        name = f"{where}.{cls.__name__}" if where != "root" else cls.__name__
        params = {k: self.decode(v, f"{name}.{k}") for k, v in node["params"].items()}
        _import_components(params, name)  # plugin layers register before the model loads
        try:
            obj = cls(**params)
        except TypeError as exc:
            raise self._bad(name, f"its settings do not fit {cls.__name__} ({exc})") from exc
        state = {k: self.decode(v, f"{name}.{k}") for k, v in node["state"].items()}
        for key, value in state.items():
            if isinstance(value, dict) and "keras_bytes" in value:
                raise UnsafeFileError(
                    f"{self.source}: {name}.{key} holds raw model bytes; mmsk.load only loads "
                    "models stored as models/<n>.keras, which it checks first"
                )
        if state:
            obj.__setstate__({**obj.__dict__, **state})
        return obj


def _loadable(cls: type, where: str) -> None:
    """Refuse at save time a class that :func:`mmsk.load` would refuse."""
    try:
        resolve_class(class_name(cls), where)
    except UnsafeFileError as exc:
        raise PersistenceError(
            f"{where}: cannot save an object of class {class_name(cls)!r}: mmsk.load only "
            "creates classes of mmsk, scikit-learn and installed plugins (or classes given "
            "to mmsk.plugins.register in the loading process)"
        ) from exc


def _import_components(params: dict[str, Any], where: str) -> None:
    """Import the plugins an estimator names, so their Keras layers are registered."""
    from mmsk.plugins import load

    encoders = params.get("encoders")
    names = [("encoder", v) for v in (encoders.values() if isinstance(encoders, dict) else ())]
    if "encoders" in params:
        names.append(("fusion", params.get("fusion")))
    for group, name in names:
        if isinstance(name, str):
            try:
                load(group, name)
            except MmskError as exc:
                raise PersistenceError(
                    f"{where}: the saved estimator uses the {group} {name!r}, which cannot be "
                    f"loaded here: {exc}"
                ) from exc
