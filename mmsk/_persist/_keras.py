"""Check a ``.keras`` file (its zip and its configuration) before Keras loads it.

The archive may hold only ``config.json``, ``metadata.json`` and
``model.weights.h5``, read with the same limits as the save around it.  In the
configuration, every serialized object is resolved the way Keras would
resolve it, and refused unless it is:

- a Keras class from a modelling sub-package (layers, models, losses, metrics,
  optimizers, initializers, regularizers, constraints, activations, ops,
  dtype policies, random), other than the ones that run code or read files
  (``Lambda``, ``TFSMLayer``, ``TorchModuleWrapper``, ``JaxLayer``,
  ``FlaxLayer``, and lookup layers given a vocabulary *file*);
- a Keras function from activations, losses, metrics, initializers,
  regularizers or constraints;
- a class registered with Keras whose module belongs to mmsk or an installed
  mmsk plugin (or is named in ``trusted=``).

Anything else (a Python lambda, a module import, ``keras.utils.get_file``,
``keras.config.enable_unsafe_deserialization``, a ``__typespec__``) is an
:class:`~mmsk.exceptions.UnsafeFileError`.  Keras then loads the model with
``safe_mode=True``.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import Any

from mmsk import _backend
from mmsk._persist._limits import (
    READ_ERRORS,
    Budget,
    check_zip,
    open_zip,
    parse_json,
    read_zip_member,
)
from mmsk._persist._trust import plugin_packages
from mmsk.exceptions import PersistenceError, UnsafeFileError

KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
CLASS_PACKAGES = (
    "layers", "models", "losses", "metrics", "optimizers", "initializers", "regularizers",
    "constraints", "activations", "ops", "dtype_policies", "random",
)  # fmt: skip
FUNCTION_PACKAGES = (
    "activations", "losses", "metrics", "initializers", "regularizers", "constraints",
)  # fmt: skip
REFUSED = {"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}
# Serialized values, not classes; Keras turns them into data.
VALUES = {"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__", "__slice__"}
LOOKUPS = {"StringLookup", "IntegerLookup", "TextVectorization"}


def objects(node: Any, path: str = "") -> Any:
    """Yield (path, dict) for every serialized object (a dict with a ``class_name``)."""
    stack = [(node, path)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if "class_name" in node:
                yield path, node
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(node))))


def read_keras(data: bytes, budget: Budget, where: str) -> tuple[dict[str, bytes], Any]:
    """The members of a ``.keras`` archive (checked) and its parsed configuration."""
    with open_zip(data, where, ".keras model") as archive:
        infos = check_zip(archive, budget, lambda n: n in KERAS_MEMBERS, where)
        if "config.json" not in infos:
            raise PersistenceError(f"{where}: the .keras model has no config.json")
        budget.used -= len(data)  # its members are counted instead
        members = {n: read_zip_member(archive, info, budget, where) for n, info in infos.items()}
    config = parse_json(members["config.json"], "config.json", budget.limits, where)
    return members, config


def foreign_classes(config: Any) -> set[str]:
    """``module:class`` of every class outside Keras in a model configuration."""
    names = set()
    for _, obj in objects(config):
        cls, module = obj.get("class_name"), obj.get("module")
        if cls in VALUES or cls == "function" or not isinstance(module, str):
            continue
        if module != "keras" and not module.startswith("keras."):
            names.add(f"{module}:{cls}")
    return names


def _label(obj: dict[str, Any], path: str) -> str:
    inner = obj.get("config")
    layer = inner.get("name") if isinstance(inner, dict) else None
    return (
        f"{obj.get('class_name')!r:.100}"
        + (f" (layer {layer!r:.60})" if isinstance(layer, str) else "")
        + f" at {path or 'the top'}"
    )


def _keras_symbol(module: str, name: str) -> Any:
    """What Keras' own resolver finds for ``module.name`` (a keras module only)."""
    import importlib

    from keras.src.api_export import get_symbol_from_name

    obj = get_symbol_from_name(f"{module}.{name}")
    if obj is None and module.startswith("keras.src."):
        obj = vars(importlib.import_module(module)).get(name)
    return obj


def _in_packages(obj: Any, packages: tuple[str, ...]) -> bool:
    module = getattr(obj, "__module__", "") or ""
    return any(
        module == f"keras.src.{p}" or module.startswith(f"keras.src.{p}.") for p in packages
    )


def _registered(key: Any) -> Any:
    from keras.saving import get_registered_object

    return get_registered_object(key) if isinstance(key, str) else None


def _trusted_module(module: Any, name: Any, extra: frozenset[str]) -> bool:
    if not isinstance(module, str):
        return False
    return module.split(".", 1)[0] in plugin_packages() or f"{module}:{name}" in extra


def check_config(config: Any, where: str, extra: frozenset[str] = frozenset()) -> None:
    """Refuse every object in a model configuration that could run code or read files."""
    for path, obj in objects(config):
        cls, module = obj.get("class_name"), obj.get("module")
        label = _label(obj, path)

        def unsafe(why: str, label: str = label) -> UnsafeFileError:
            return UnsafeFileError(
                f"{where}: the model holds {label}: {why}; mmsk.load refuses it"
            )

        if not isinstance(cls, str):
            raise unsafe("its class_name is not a string")
        if cls in VALUES:
            continue
        if cls in REFUSED or cls.startswith("__"):
            raise unsafe("this stores Python code or reads files when loaded")
        if cls == "function":
            fn = obj.get("config")
            if not isinstance(fn, str) or not fn.isidentifier():
                raise unsafe(f"the function {fn!r:.80} is not a plain Keras function name")
            found = _registered(fn)
            if found is not None:
                if not _trusted_module(getattr(found, "__module__", None), fn, extra):
                    raise unsafe(f"{fn!r} is registered by {found.__module__!r}, not mmsk")
                continue
            if module == "builtins":  # Keras looks in activations, losses, metrics, ...
                found = (_keras_symbol(f"keras.{p}", fn) for p in FUNCTION_PACKAGES)
                target = next((t for t in found if t is not None), None)
            elif isinstance(module, str) and (module == "keras" or module.startswith("keras.")):
                target = _keras_symbol(module, fn)
            else:
                target = None
            if not callable(target) or not _in_packages(target, FUNCTION_PACKAGES):
                raise unsafe(
                    f"function {fn!r} of module {module!r:.80}: only Keras' activations, "
                    "losses, metrics, initializers, regularizers and constraints are accepted"
                )
            continue
        registered = obj.get("registered_name", cls)
        found = _registered(registered)
        if found is not None:  # Keras takes a registered object before anything else
            if not (
                isinstance(found, type)
                and found.__module__ == module
                and found.__name__ == cls
                and _trusted_module(module, cls, extra)
            ):
                raise unsafe(
                    f"its registered name {registered!r:.80} is the Keras-registered "
                    f"{getattr(found, '__module__', '?')}.{getattr(found, '__name__', '?')}, "
                    "not a layer of mmsk or an installed plugin"
                )
            continue
        if not isinstance(module, str) or not (module == "keras" or module.startswith("keras.")):
            raise unsafe(
                f"the class {cls!r:.80} from module {module!r:.80} (registered name "
                f"{registered!r:.80}) is neither Keras' nor a Keras-registered class of mmsk "
                "or an installed plugin"
            )
        target = _keras_symbol(module, cls)
        if not (isinstance(target, type) and _in_packages(target, CLASS_PACKAGES)):
            raise unsafe(
                f"{module}.{cls} is not a Keras layer, model, loss, metric, optimizer, "
                "initializer, regularizer, constraint or dtype policy"
            )
        if any(issubclass(target, r) for r in _refused_classes()):
            raise unsafe("this stores Python code or reads files when loaded")
        inner = obj.get("config")
        if cls in LOOKUPS and isinstance(inner, dict):
            if isinstance(inner.get("vocabulary"), str) or isinstance(
                inner.get("idf_weights"), str
            ):
                raise unsafe("its vocabulary is a file path, which Keras would read")


def _refused_classes() -> list[type]:
    keras = _backend.keras()
    found = []
    for name in REFUSED:
        cls = getattr(keras.layers, name, None)
        if isinstance(cls, type):
            found.append(cls)
    return found


MAX_H5_OBJECTS = 100_000


def check_weights(data: bytes, where: str) -> None:
    """Refuse an HDF5 weights file that would make h5py read other files.

    External links, external raw storage and virtual datasets point at files
    outside the save; Keras would read them into the model's weights.
    """
    import h5py

    label = f"{where}: model.weights.h5"
    try:
        with h5py.File(io.BytesIO(data), "r") as h5:
            stack, seen = [h5], 0
            while stack:
                group = stack.pop()
                for key in group:
                    seen += 1
                    if seen > MAX_H5_OBJECTS:
                        raise PersistenceError(f"{label}: more than {MAX_H5_OBJECTS} objects")
                    link = group.get(key, getlink=True)
                    if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
                        raise UnsafeFileError(
                            f"{label}: {group.name}/{key} is a link ({type(link).__name__}); "
                            "weights must be stored in the file itself; mmsk.load refuses it"
                        )
                    item = group.get(key)
                    if isinstance(item, h5py.Group):
                        stack.append(item)
                    elif isinstance(item, h5py.Dataset) and (item.external or item.is_virtual):
                        raise UnsafeFileError(
                            f"{label}: dataset {item.name} stores its data in other files "
                            "(external or virtual); mmsk.load refuses it"
                        )
    except PersistenceError:
        raise
    except READ_ERRORS as exc:
        raise PersistenceError(
            f"{label} cannot be read ({type(exc).__name__}: {exc}); the file is damaged"
        ) from exc


def load_keras(
    data: bytes, budget: Budget, where: str, extra: frozenset[str] = frozenset()
) -> Any:
    """Check, then load a ``.keras`` model from bytes with ``safe_mode=True``."""
    members, config = read_keras(data, budget, where)
    _backend.keras()
    import mmsk.layers  # noqa: F401  (registers mmsk's layers)

    check_config(config, where, extra)
    if "model.weights.h5" in members:
        check_weights(members["model.weights.h5"], where)
    try:
        return keras_from_bytes(data)
    except Exception as exc:
        raise PersistenceError(
            f"{where}: Keras could not load the model with safe_mode=True "
            f"({type(exc).__name__}: {str(exc)[:500]})"
        ) from exc


def keras_from_bytes(data: bytes) -> Any:
    """Load ``.keras`` bytes with ``safe_mode=True`` and no further checks.

    For bytes mmsk trusts already: :func:`load_keras` after its checks, and an
    estimator's ``__setstate__`` (unpickling runs whatever a pickle says, so
    checks there would promise nothing).  mmsk's layers are registered first.
    """
    keras = _backend.keras()
    import mmsk.layers  # noqa: F401  (registers mmsk's layers)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        return keras.saving.load_model(path, safe_mode=True, compile=True)


def save_keras(model: Any) -> bytes:
    """The bytes of ``model`` saved in the ``.keras`` format."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as fh:
            return fh.read()
