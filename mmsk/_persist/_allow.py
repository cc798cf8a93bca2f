"""Which Python classes a saved file may name: mmsk, scikit-learn and installed plugins.

A name is checked *before* its module is imported, so a crafted file cannot make
:func:`mmsk.load` import (and so run) anything else.
"""

from __future__ import annotations

import builtins
import importlib
import sys
from typing import Any

import numpy as np

from mmsk.exceptions import UnsafeFileError

ALWAYS = ("mmsk", "sklearn")
# Types a scikit-learn parameter may hold (``dtype=float``); nothing that runs code.
BUILTIN_TYPES = {t.__name__: t for t in (bool, int, float, complex, str, bytes, object)}


def plugin_packages() -> set[str]:
    """Top-level packages of the encoder/fusion entry points of installed distributions."""
    from mmsk.plugins import entry_points

    found = set()
    for group in ("encoder", "fusion"):
        for eps in entry_points(group).values():
            for ep in eps:
                found.add(ep.value.split(":", 1)[0].split(".", 1)[0])
    return found


def _registered_objects() -> list[Any]:
    """Classes added with :func:`mmsk.plugins.register` in this process."""
    from mmsk.plugins import _registry

    return [obj for group in _registry._registered.values() for obj in group.values()]


def allowed_module(module: str) -> bool:
    """True when classes of ``module`` may be named in a saved file."""
    top = module.split(".", 1)[0]
    return top in ALWAYS or top in plugin_packages()


def class_name(cls: type) -> str:
    """``"module:qualname"``, as written in a saved file."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _attribute(module: Any, qualname: str) -> Any:
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_class(name: Any, where: str) -> type:
    """The class a saved file names, if it is allowed; else an :class:`UnsafeFileError`.

    Allowed: classes of mmsk, scikit-learn and the packages of installed
    encoder/fusion plugins, numpy scalar types, a few builtin types, and classes
    registered with :func:`mmsk.plugins.register` in this process.
    """
    if not isinstance(name, str) or name.count(":") != 1:
        raise UnsafeFileError(
            f"{where}: Expected a class name 'module:qualname'. Received: {name!r}"
        )
    module, qualname = name.split(":")
    if "<" in qualname or not all(
        p.isidentifier() for p in (*module.split("."), *qualname.split("."))
    ):
        raise UnsafeFileError(f"{where}: {name!r} is not the name of a module-level class")
    if module == "builtins" and qualname in BUILTIN_TYPES:
        return BUILTIN_TYPES[qualname]
    if module == "numpy" or module.startswith("numpy."):
        obj = getattr(np, qualname, None) if "." not in qualname else None
        if isinstance(obj, type) and issubclass(obj, np.generic):
            return obj
    elif allowed_module(module):
        try:
            obj = _attribute(importlib.import_module(module), qualname)
        except (ImportError, AttributeError) as exc:
            raise UnsafeFileError(
                f"{where}: class {name!r} cannot be found ({type(exc).__name__}: {exc}); "
                "was the file written with another version of mmsk or a plugin?"
            ) from exc
        if isinstance(obj, type):
            return obj
    elif module in sys.modules:  # a class registered in this process, e.g. in a notebook
        obj = getattr(sys.modules[module], qualname, None) if "." not in qualname else None
        if isinstance(obj, type) and any(obj is r for r in _registered_objects()):
            return obj
    raise UnsafeFileError(
        f"{where}: the file names the Python class {name!r}; mmsk.load only creates classes "
        f"of mmsk, scikit-learn and installed plugins ({sorted({*ALWAYS, *plugin_packages()})}) "
        "and refuses others, as creating them could run code from the file's author"
    )


def resolve_ufunc(name: Any, where: str) -> Any:
    """A numpy ufunc by name (``"log1p"``), the only functions a saved file may name."""
    obj = getattr(np, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not isinstance(obj, np.ufunc):
        raise UnsafeFileError(
            f"{where}: the file names the function {name!r}; mmsk.load only accepts numpy "
            "ufuncs by name and refuses other functions, which would run code"
        )
    return obj


def is_builtin_type(obj: Any) -> bool:
    return (
        isinstance(obj, type)
        and BUILTIN_TYPES.get(obj.__name__) is obj
        and (obj.__module__ == builtins.__name__)
    )
