"""Which Python classes a saved file may name: an explicit set of exact ``module:qualname``.

The default trusted set, computed once on first use:

- mmsk's public estimators, transformers and components (the classes in the
  ``__all__`` of ``mmsk.models``, ``mmsk.preprocessing``, ``mmsk.components``
  and ``mmsk.tuning``);
- scikit-learn's estimators (``sklearn.utils.all_estimators()``), which include
  ``Pipeline``, ``FeatureUnion``, ``ColumnTransformer``, ``FunctionTransformer``
  and the label encoders;
- the classes that installed ``mmsk.encoders``/``mmsk.fusions`` entry points
  name, exactly as they name them, and classes given to
  :func:`mmsk.plugins.register` in this process;
- NumPy's scalar types and ``bool``, ``int``, ``float``, ``complex``, ``str``,
  ``bytes`` and ``object`` (for ``dtype=`` settings).

A name is checked against the set *before* its module is imported; the module
is then imported and the class taken with one ``getattr`` (no walk through
modules or attributes; a dotted qualname only when that exact name is
trusted), and the object's own ``__module__`` and ``__qualname__`` must equal
the name.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import inspect
from collections.abc import Iterable
from typing import Any

import numpy as np

from mmsk.exceptions import PersistenceError, UnsafeFileError

BUILTIN_TYPES = {t.__name__: t for t in (bool, int, float, complex, str, bytes, object)}
MMSK_PACKAGES = ("mmsk.models", "mmsk.preprocessing", "mmsk.components", "mmsk.tuning")
# Public paths of the scikit-learn classes most pipelines use: trusted without
# importing the whole of scikit-learn (a subset of ``all_estimators()``).
SKLEARN_COMMON = {
    "sklearn.pipeline": ("Pipeline", "FeatureUnion"),
    "sklearn.compose": ("ColumnTransformer", "TransformedTargetRegressor"),
    "sklearn.impute": ("SimpleImputer", "MissingIndicator"),
    "sklearn.preprocessing": (
        "FunctionTransformer", "LabelBinarizer", "LabelEncoder", "MaxAbsScaler",
        "MinMaxScaler", "MultiLabelBinarizer", "Normalizer", "OneHotEncoder",
        "OrdinalEncoder", "PolynomialFeatures", "PowerTransformer", "QuantileTransformer",
        "RobustScaler", "StandardScaler",
    ),
}  # fmt: skip


def class_name(cls: type) -> str:
    """``"module:qualname"``, as written in a saved file."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _is_estimator_class(obj: Any) -> bool:
    from sklearn.base import BaseEstimator

    return isinstance(obj, type) and issubclass(obj, BaseEstimator)


@functools.cache
def _base_names() -> frozenset[str]:
    """Builtins, NumPy scalar types, mmsk's public classes (cheap: no TensorFlow)."""
    names = {f"builtins:{n}" for n in BUILTIN_TYPES}
    names |= {class_name(t) for t in set(np.sctypeDict.values()) if issubclass(t, np.generic)}
    for package in MMSK_PACKAGES:
        module = importlib.import_module(package)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr, None)
            if isinstance(obj, type) and _is_estimator_class(obj) and not inspect.isabstract(obj):
                names.add(class_name(obj))
    return frozenset(names)


@functools.cache
def _sklearn_common() -> frozenset[str]:
    names = set()
    for package, attrs in SKLEARN_COMMON.items():
        module = importlib.import_module(package)
        names |= {class_name(getattr(module, a)) for a in attrs}
    return frozenset(names)


@functools.cache
def _sklearn_all() -> frozenset[str]:
    from sklearn.utils import all_estimators

    names = {class_name(cls) for _, cls in all_estimators()}
    return frozenset(n for n in names if n.startswith("sklearn."))


def plugin_entries() -> dict[str, tuple[str, str, str, str]]:
    """``module:attr`` of each installed encoder/fusion entry point ->
    (group, name, distribution, version)."""
    from mmsk.plugins import entry_points

    found = {}
    for group in ("encoder", "fusion"):
        for name, eps in entry_points(group).items():
            for ep in eps:
                dist = ep.dist.name if ep.dist is not None else ""
                version = ep.dist.version if ep.dist is not None else ""
                found[ep.value.replace(" ", "")] = (group, name, dist, version)
    return found


def plugin_packages() -> set[str]:
    """Top-level packages of installed encoder/fusion plugins (mmsk's own included)."""
    return {"mmsk", *(v.split(":", 1)[0].split(".", 1)[0] for v in plugin_entries())}


def _registered() -> set[str]:
    from mmsk.plugins import _registry

    return {
        class_name(obj)
        for group in _registry._registered.values()
        for obj in group.values()
        if isinstance(obj, type)
    }


def normalize(trusted: Iterable[Any] | None) -> frozenset[str]:
    """The exact names of a ``trusted=`` argument (strings, or classes)."""
    if trusted is None:
        return frozenset()
    if isinstance(trusted, (str, type)):
        trusted = [trusted]
    names = set()
    for item in trusted:
        name = class_name(item) if isinstance(item, type) else item
        if not isinstance(name, str) or not well_formed(name):
            raise PersistenceError(
                "Expected trusted= to hold exact class names 'module:qualname', as "
                f"mmsk.get_untrusted_types lists them. Received: {item!r}"
            )
        names.add(name)
    return frozenset(names)


def well_formed(name: str) -> bool:
    if name.count(":") != 1:
        return False
    module, qualname = name.split(":")
    return all(p.isidentifier() for p in (*module.split("."), *qualname.split(".")))


def trusted_by_default(name: str) -> bool:
    """True when ``name`` is in the default trusted set."""
    if name in _base_names() or name in _registered() or name in plugin_entries():
        return True
    if not name.startswith("sklearn."):
        return False
    return name in _sklearn_common() or name in _sklearn_all()


def is_trusted(name: str, extra: frozenset[str]) -> bool:
    return name in extra or trusted_by_default(name)


def is_dtype_like(cls: type) -> bool:
    """Builtin scalar types and NumPy scalar types: what ``dtype=`` settings hold."""
    if not isinstance(cls, type):
        return False
    builtin = BUILTIN_TYPES.get(cls.__name__) is cls and cls.__module__ == builtins.__name__
    return builtin or issubclass(cls, np.generic)


def resolve(name: Any, extra: frozenset[str], where: str) -> type:
    """The trusted class a file names; :class:`UnsafeFileError` for anything else."""
    if not isinstance(name, str) or not well_formed(name):
        raise UnsafeFileError(
            f"{where}: Expected an exact class name 'module:qualname'. Received: {name!r:.200}"
        )
    if not is_trusted(name, extra):
        raise UnsafeFileError(
            f"{where}: the file names the Python class {name!r}, which is not trusted; "
            "mmsk.load refuses it. Review the file's types with "
            "mmsk.get_untrusted_types(path) and pass the ones you trust as trusted=[...]"
        )
    module_name, qualname = name.split(":")
    if module_name == "builtins":
        return BUILTIN_TYPES[qualname]
    try:
        module = importlib.import_module(module_name)
        obj: Any = module
        for part in qualname.split("."):  # a dotted name only when exactly trusted
            obj = inspect.getattr_static(obj, part)
            if not isinstance(obj, type):
                break
    except (ImportError, AttributeError) as exc:
        raise PersistenceError(
            f"{where}: class {name!r} cannot be found ({type(exc).__name__}: {exc}); was the "
            "file written with another version of mmsk, scikit-learn or a plugin?"
        ) from exc
    if not isinstance(obj, type) or obj.__module__ != module_name or obj.__qualname__ != qualname:
        raise UnsafeFileError(
            f"{where}: {name!r} does not name a class defined under that exact name "
            f"(found {type(obj).__name__} {getattr(obj, '__module__', '?')}:"
            f"{getattr(obj, '__qualname__', '?')}); mmsk.load refuses it"
        )
    return obj


def resolve_function(name: Any, extra: frozenset[str], where: str) -> Any:
    """A function the file names by ``module:name`` (a ``model=`` build function), only
    when the caller trusts that exact name: no function is trusted by default."""
    if not isinstance(name, str) or not well_formed(name) or name not in extra:
        raise UnsafeFileError(
            f"{where}: the file names the function {name!r:.200}, which is not trusted; "
            "mmsk.load refuses it. Review the file's names with mmsk.get_untrusted_types(path) "
            "and pass the ones you trust as trusted=[...]"
        )
    module_name, qualname = name.split(":")
    try:
        obj = inspect.getattr_static(importlib.import_module(module_name), qualname)
    except (ImportError, AttributeError) as exc:
        raise PersistenceError(
            f"{where}: function {name!r} cannot be found ({type(exc).__name__}: {exc})"
        ) from exc
    found = (getattr(obj, "__module__", None), getattr(obj, "__qualname__", None))
    if not inspect.isfunction(obj) or found != (module_name, qualname):
        raise UnsafeFileError(
            f"{where}: {name!r} does not name a function defined under that exact name; "
            "mmsk.load refuses it"
        )
    return obj


def resolve_ufunc(name: Any, where: str) -> Any:
    """A numpy ufunc by name (``"log1p"``), the only functions a saved file may name."""
    obj = getattr(np, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not isinstance(obj, np.ufunc):
        raise UnsafeFileError(
            f"{where}: the file names the function {name!r:.100}; mmsk.load only accepts numpy "
            "ufuncs by name and refuses other functions, which would run code"
        )
    return obj
