"""Objects <-> JSON nodes, arrays kept aside for ``arrays.npz``, Keras models as ``.keras``.

A JSON object in the configuration is always a tagged node ``{"$": kind, ...}``;
JSON lists are Python lists and scalars are themselves.  Estimators are
written as their exact class name, ``get_params(deep=False)`` and their
learned state (``__getstate__`` without the parameters), recursively.

Decoding treats the file as data: classes come from the trusted set only,
parameters must be the class's own, state keys must be plain attribute names
the class does not define (no dunders, methods, properties or class
attributes), so the trusted class's own ``__setstate__`` gets data only.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from mmsk._batch import ModalitySpec
from mmsk._persist._checks import check_estimator
from mmsk._persist._keras import save_keras
from mmsk._persist._store import MODEL_FILE
from mmsk._persist._trust import (
    class_name,
    is_dtype_like,
    resolve,
    resolve_function,
    resolve_ufunc,
    well_formed,
)
from mmsk.exceptions import InputError, MmskError, PersistenceError, UnsafeFileError

# Parameters that make an object read or write files: never restored from a file.
PATH_PARAMS = {"checkpoint_dir": None, "memory": None, "directory": None}
TEXT_INPUT_CLASSES = ("CountVectorizer", "TfidfVectorizer", "HashingVectorizer")
MAX_STR_ITEMSIZE = 1 << 16
SCALAR_KINDS = "biufc"


def _is_keras_model(obj: Any) -> bool:
    keras = __import__("sys").modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


class Encoder:
    """Turn an object into JSON nodes; collect arrays, model files and class names."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.files: dict[str, bytes] = {}
        self.classes: set[str] = set()
        self.components: set[tuple[str, str]] = set()

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
            if value.dtype.kind not in SCALAR_KINDS + "US":
                raise self._fail(value, where, f" of dtype {value.dtype}")
            return {
                "$": "scalar",
                "dtype": value.dtype.str,
                "value": self.encode(value.item(), where),
            }
        if isinstance(value, np.dtype):
            if value.fields is not None or value.kind == "V" or value.subdtype is not None:
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
        if inspect.isfunction(value):  # e.g. a model= build function: by name, never code
            return self._function(value, where)
        raise self._fail(value, where)

    def _function(self, value: Any, where: str) -> dict[str, Any]:
        name = f"{value.__module__}:{value.__qualname__}"
        module = sys.modules.get(value.__module__)
        if not well_formed(name) or getattr(module, value.__qualname__, None) is not value:
            raise PersistenceError(
                f"{where}: cannot save the function {name!r}: it cannot be found again by "
                "that name (a lambda, or defined inside a function); expected a function "
                "defined at the top of a module"
            )
        return {"$": "function", "name": name}

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
        if not is_dtype_like(value):
            _loadable(value, where)
        self.classes.add(class_name(value))
        return {"$": "type", "class": class_name(value)}

    def estimator(self, obj: Any, where: str) -> dict[str, Any]:
        cls = type(obj)
        _loadable(cls, where)
        self.classes.add(class_name(cls))
        params = obj.get_params(deep=False)
        for group, key in (("encoder", "encoders"), ("fusion", "fusion")):
            value = params.get(key)
            for name in value.values() if isinstance(value, dict) else [value]:
                if isinstance(name, str):
                    self.components.add((group, name))
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


def node_names(node: Any, kinds: tuple[str, ...], key: str) -> set[str]:
    """The ``key`` field of every node of a configuration whose ``"$"`` is in ``kinds``.

    Examples
    --------
    >>> node_names({"$": "type", "class": "a:B", "x": [{"$": "type", "class": "c:D"}]},
    ...            ("type",), "class") == {"a:B", "c:D"}
    True
    """
    names, stack = set(), [node]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if node.get("$") in kinds and isinstance(node.get(key), str):
                names.add(node[key])
            stack.extend(node.values())
    return names


def function_names(node: Any) -> set[str]:
    """Every function a configuration names (``model=`` build functions)."""
    return node_names(node, ("function",), "name")


def type_names(node: Any) -> set[str]:
    """Every class name a configuration's nodes name (estimators and types)."""
    return node_names(node, ("estimator", "type"), "class")


class Decoder:
    """Turn JSON nodes back into objects; arrays and models come from the archive."""

    def __init__(self, arrays: Any, load_model: Any, source: str, extra: frozenset[str],
                 plugins: Any = None) -> None:  # fmt: skip
        self.arrays = arrays
        self.load_model = load_model  # (member name, where) -> Keras model
        self.source = source
        self.extra = extra
        self.plugins = plugins if isinstance(plugins, list) else []

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
            return self._node(kind, node, where)
        except MmskError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, IndexError,
                MemoryError) as exc:  # fmt: skip
            raise self._bad(
                where, f"a {kind!r:.40} entry is malformed ({type(exc).__name__}: {exc})"
            ) from exc

    def _node(self, kind: str, node: dict[str, Any], where: str) -> Any:
        if kind == "float":
            if node["value"] not in ("nan", "inf", "-inf"):
                raise ValueError(f"not a special float: {node['value']!r:.40}")
            return float(node["value"])
        if kind == "tuple":
            return tuple(self.decode(self._list(node["items"]), where))
        if kind == "dict":
            out = {}
            for pair in self._list(node["items"]):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ValueError("a dict item is not a [key, value] pair")
                key = self.decode(pair[0], where)
                out[key] = self.decode(pair[1], f"{where}[{key!r:.40}]")
            return out
        if kind == "array":
            return self._array(node["key"], where)
        if kind == "objects":
            items = self.decode(self._list(node["items"]), where)
            shape = node["shape"]
            if not isinstance(shape, list) or not all(
                type(n) is int and n >= 0 for n in shape
            ) or math.prod(shape) != len(items):  # fmt: skip
                raise ValueError(f"shape {shape!r:.80} does not fit {len(items)} items")
            objs = np.empty(len(items), dtype=object)
            objs[:] = items
            return objs.reshape(shape)
        if kind == "scalar":
            return self._scalar(node["dtype"], node["value"])
        if kind == "dtype":
            return self._dtype(node["name"], "biufcUSO")
        if kind == "spec":
            shape, columns = tuple(self._list(node["shape"])), tuple(self._list(node["columns"]))
            try:
                return ModalitySpec(
                    node["kind"],
                    shape,
                    node["dtype"],
                    node["vocabulary_size"],
                    columns,
                    node.get("char_columns", 0),
                    node.get("char_vocabulary_size", 0),
                )
            except InputError as exc:  # a spec no fit makes: the file's fault, not the data's
                raise ValueError(str(exc)) from exc
        if kind == "path":
            if not isinstance(node["value"], str):
                raise TypeError("a path is not a string")
            return Path(node["value"])
        if kind == "random_state":
            rs = np.random.RandomState()
            rs.set_state(self.decode(node["state"], where))
            return rs
        if kind == "ufunc":
            return resolve_ufunc(node["name"], f"{self.source}: {where}")
        if kind == "function":
            return resolve_function(node["name"], self.extra, f"{self.source}: {where}")
        if kind == "type":
            cls = resolve(node["class"], self.extra, f"{self.source}: {where}")
            return cls
        if kind == "keras":
            name = node["file"]
            if not isinstance(name, str) or not MODEL_FILE.fullmatch(name):
                raise self._bad(
                    where, f"Expected a model file 'models/<n>.keras'. Received: {name!r:.80}"
                )
            return self.load_model(name, f"{self.source}: {where} ({name})")
        if kind == "estimator":
            return self.estimator(node, where)
        raise PersistenceError(
            f"{self.source}: {where}: unknown entry kind {kind!r:.40}; the file is damaged or "
            "was written by a newer mmsk"
        )

    @staticmethod
    def _list(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, found {type(value).__name__}")
        return value

    @staticmethod
    def _dtype(name: Any, kinds: str) -> np.dtype:
        if not isinstance(name, str) or len(name) > 16:
            raise ValueError(f"not a dtype name: {name!r:.40}")
        dtype = np.dtype(name)
        if (
            dtype.kind not in kinds
            or dtype.fields is not None
            or dtype.subdtype is not None
            or dtype.itemsize > MAX_STR_ITEMSIZE
        ):
            raise ValueError(f"dtype {name!r} is not a number, boolean or short string")
        return dtype

    def _scalar(self, name: Any, value: Any) -> Any:
        dtype = self._dtype(name, SCALAR_KINDS + "US")
        expected: Any = {"b": bool, "i": int, "u": int, "f": (int, float, dict), "c": (list, dict),
                    "U": str, "S": str}[dtype.kind]  # fmt: skip
        if not isinstance(value, expected):
            raise TypeError(f"a {dtype} scalar cannot hold {type(value).__name__}")
        if dtype.kind == "S":
            value = value.encode("latin-1")
        return dtype.type(self.decode(value) if isinstance(value, dict) else value)

    def _array(self, key: Any, where: str) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise self._bad(where, f"array {key!r:.40} is missing from arrays.npz")
        return self.arrays[key]

    def estimator(self, node: dict[str, Any], where: str) -> Any:
        from sklearn.base import BaseEstimator

        if set(node) != {"$", "class", "params", "state"}:
            raise ValueError(f"keys {sorted(node)!r:.120}")
        cls = resolve(node["class"], self.extra, f"{self.source}: {where}")
        if not issubclass(cls, BaseEstimator):
            raise UnsafeFileError(
                f"{self.source}: {where}: {node['class']!r} is not a scikit-learn estimator"
            )
        name = f"{where}.{cls.__name__}" if where != "root" else cls.__name__
        params_node, state_node = node["params"], node["state"]
        if not isinstance(params_node, dict) or not isinstance(state_node, dict):
            raise TypeError("params and state must be JSON objects")
        allowed = set(cls._get_param_names())  # type: ignore[attr-defined]
        routes = tuple(getattr(cls, "_routed_prefixes", ()))  # model__units, fit__shuffle, ...
        unknown = sorted(
            k for k in set(params_node) - allowed if not (routes and str(k).startswith(routes))
        )
        if unknown:
            raise self._bad(
                name, f"settings {unknown!r:.200} are not parameters of {cls.__name__}"
            )
        params = {k: self.decode(v, f"{name}.{k}") for k, v in params_node.items()}
        for key, default in PATH_PARAMS.items():
            if key in params:
                params[key] = default  # never from a file: it names a folder to write
        if cls.__name__ in TEXT_INPUT_CLASSES and params.get("input") in ("file", "filename"):
            params["input"] = "content"
        self._import_components(params, name)  # plugin layers register before the model loads
        try:
            obj = cls(**params)
        except Exception as exc:
            raise self._bad(name, f"its settings do not fit {cls.__name__} ({exc})") from exc
        for key in state_node:
            _check_state_key(cls, key, allowed, f"{self.source}: {name}")
        state = {k: self.decode(v, f"{name}.{k}") for k, v in state_node.items()}
        for key, value in state.items():
            if isinstance(value, dict) and "keras_bytes" in value:
                raise UnsafeFileError(
                    f"{self.source}: {name}.{key} holds raw model bytes; mmsk.load only loads "
                    "models stored as models/<n>.keras, which it checks first"
                )
        if state:  # the trusted class's own __setstate__, given checked keys only
            obj.__setstate__({**vars(obj), **state})
        check_estimator(obj, f"{self.source}: {name}")
        return obj

    def _import_components(self, params: dict[str, Any], where: str) -> None:
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
                    hint = missing_plugin_hint(self.plugins, group=group, name=name)
                    raise PersistenceError(
                        f"{self.source}: {where}: the saved estimator uses the {group} "
                        f"{name!r}, which cannot be loaded here: {exc}{hint}"
                    ) from exc


def missing_plugin_hint(plugins: list[Any], *, group: str = "", name: str = "",
                        cls: str = "") -> str:  # fmt: skip
    """``; the file says ... pip install <dist>`` for a plugin the file's metadata names."""
    for entry in plugins:
        if not isinstance(entry, dict):
            continue
        if (cls and entry.get("class") == cls) or (
            group and entry.get("group") == group and entry.get("name") == name
        ):
            dist, version = str(entry.get("distribution"))[:80], str(entry.get("version"))[:40]
            return (
                f". The file says it was written with the plugin distribution {dist!r} "
                f"(version {version}), which is not installed; if you trust it, install it "
                f"(pip install {dist}) and load again"
            )
    return ""


def _check_state_key(cls: type, key: Any, params: set[str], where: str) -> None:
    if not isinstance(key, str) or not key.isidentifier():
        raise UnsafeFileError(f"{where}: state key {key!r:.80} is not an attribute name")
    if key.startswith("__") or key in params or hasattr(cls, key):
        what = (
            "a dunder"
            if key.startswith("__")
            else "a parameter"
            if key in params
            else f"defined by the class ({type(getattr(cls, key, None)).__name__})"
        )
        raise UnsafeFileError(
            f"{where}: the file sets {key!r}, which is {what}; learned state may only add "
            "attributes of its own, never replace a method, property or setting"
        )


def _loadable(cls: type, where: str) -> None:
    """Refuse at save time a class that no :func:`mmsk.load` could find by its exact name."""
    name = class_name(cls)
    obj: Any = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        obj = getattr(obj, part, None)
    if obj is not cls or not well_formed(name):
        raise PersistenceError(
            f"{where}: cannot save an object of class {name!r}: it cannot be found again by "
            "that name (defined inside a function, or renamed); expected a class defined at "
            "the top of a module"
        )
