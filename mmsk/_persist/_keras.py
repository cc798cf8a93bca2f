"""Check a ``.keras`` file's configuration before Keras loads it, then load it safely."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from typing import Any

from mmsk import _backend
from mmsk._persist._allow import allowed_module
from mmsk.exceptions import PersistenceError, UnsafeFileError

# Serialized objects Keras would turn back into Python code.
_CODE = {"Lambda", "__lambda__", "TFSMLayer"}


def _objects(node: Any, path: str = "") -> Any:
    """Yield (path, dict) for every serialized object (a dict with a ``class_name``)."""
    if isinstance(node, dict):
        if "class_name" in node:
            yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{path}[{i}]")


def check_config(config: Any, where: str) -> None:
    """Refuse Lambda layers, serialized functions and classes mmsk does not know.

    Keras' built-ins (module ``keras...``) are allowed; other classes must come
    from mmsk or an installed plugin *and* be registered with Keras
    (``registered_name``), so ``safe_mode`` and the registry decide what they are.
    """
    for path, obj in _objects(config):
        cls, module = obj.get("class_name"), obj.get("module")
        layer = (
            (obj.get("config") or {}).get("name") if isinstance(obj.get("config"), dict) else None
        )
        label = f"{cls!r}" + (f" (layer {layer!r})" if layer else "") + f" at {path or 'the top'}"
        if cls in _CODE:
            raise UnsafeFileError(
                f"{where}: the model holds a {label}, which stores Python code that loading "
                "would run; mmsk.load refuses it. Expected only Keras built-in layers and "
                "layers registered by mmsk or an installed plugin"
            )
        if cls == "function" and not (isinstance(module, str) and module.startswith("keras")):
            raise UnsafeFileError(
                f"{where}: the model names the function {obj.get('config')!r} from module "
                f"{module!r} at {path}; mmsk.load only accepts Keras' own functions"
            )
        if module is None or (isinstance(module, str) and module.split(".")[0] == "keras"):
            continue
        if (
            not isinstance(module, str)
            or not allowed_module(module)
            or not obj.get("registered_name")
        ):
            raise UnsafeFileError(
                f"{where}: the model holds the class {label} from module {module!r}, which is "
                "neither Keras' nor a Keras-registered class of mmsk or an installed plugin; "
                "mmsk.load refuses unknown classes"
            )


def check_keras_bytes(data: bytes, where: str) -> None:
    """Read ``config.json`` from a ``.keras`` archive's bytes and :func:`check_config` it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as exc:
        raise PersistenceError(
            f"{where}: not a readable .keras model ({type(exc).__name__}: {exc}); the file is "
            "damaged or truncated"
        ) from exc
    check_config(config, where)


def load_keras(data: bytes, where: str) -> Any:
    """Check, then load a ``.keras`` model from bytes with ``safe_mode=True``."""
    check_keras_bytes(data, where)
    keras = _backend.keras()
    import mmsk.layers  # noqa: F401  (registers mmsk's layers)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            return keras.saving.load_model(path, safe_mode=True, compile=True)
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            error = UnsafeFileError if "safe_mode" in text or "lambda" in text.lower() else None
            raise (error or PersistenceError)(
                f"{where}: Keras could not load the model with safe_mode=True ({text})"
            ) from exc


def save_keras(model: Any) -> bytes:
    """The bytes of ``model`` saved in the ``.keras`` format."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as fh:
            return fh.read()
