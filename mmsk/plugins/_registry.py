"""Find encoders and fusions by name: entry points plus in-process registrations.

Entry points are read with :mod:`importlib.metadata`; nothing is imported until a
name is used.  mmsk's built-ins are entry points of the ``mmsk`` distribution, so
built-ins and third-party plugins take one path.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from mmsk._batch import KINDS
from mmsk.exceptions import ParameterError, PluginError, UnknownComponentError
from mmsk.plugins._static import static_kinds

GROUPS = {"encoder": "mmsk.encoders", "fusion": "mmsk.fusions"}
DISABLE_ENV = "MMSK_DISABLE_PLUGIN_AUTOLOAD"

_registered: dict[str, dict[str, Any]] = {group: {} for group in GROUPS.values()}
_loaded: dict[tuple[str, str], Any] = {}
_errors: dict[tuple[str, str], str] = {}
_scanned: dict[str, tuple[tuple, tuple[metadata.EntryPoint, ...]]] = {}


@dataclass(frozen=True)
class PluginInfo:
    """One name in a plugin group, as :func:`list_plugins` reports it.

    Attributes
    ----------
    name : str
        The name used in ``encoders=`` / ``fusion=``.
    group : {"encoder", "fusion"}
    distribution : str
        The installed distribution that declares it (``"<registered>"`` for
        :func:`register`), or several joined by ", " for a conflict.
    version : str
    kinds : tuple of str or None
        Modality kinds an encoder accepts: the class's own ``kinds`` once it is
        imported (``check=True``), else read from its source without importing
        it (regular and editable installs, classes re-exported by a package's
        ``__init__``); None when neither is possible, and for fusions.
    status : {"available", "loaded", "error", "conflict", "registered"}
    error : str or None
        Why it cannot be used, for ``"error"`` and ``"conflict"``; for an encoder
        whose ``kinds`` names unknown kinds, what is wrong with them (a
        ``UserWarning`` says the same).
    target : str
        ``module:attribute`` of the entry point.
    """

    name: str
    group: str
    distribution: str
    version: str
    kinds: tuple[str, ...] | None
    status: str
    error: str | None
    target: str


def _group(group: str) -> str:
    if group in GROUPS:
        return GROUPS[group]
    if group in GROUPS.values():
        return group
    raise ParameterError(f"Expected a group in {sorted(GROUPS)}. Received: group={group!r}")


def _short(group: str) -> str:
    return next(k for k, v in GROUPS.items() if v == group)


def _dist(ep: metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "<unknown distribution>"


def _version(ep: metadata.EntryPoint) -> str:
    return ep.dist.version if ep.dist is not None else ""


def autoload_disabled() -> bool:
    """True when ``MMSK_DISABLE_PLUGIN_AUTOLOAD`` is set (to anything but 0/empty)."""
    return os.environ.get(DISABLE_ENV, "") not in ("", "0")


def _path_state() -> tuple:
    """sys.path with each folder's mtime: it changes when a distribution is installed."""
    state: list[tuple[str, int | None]] = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, None))
    return tuple(state)


def _scan(group: str) -> tuple[metadata.EntryPoint, ...]:
    """All entry points of a group, rescanned only when sys.path or its folders change."""
    state = _path_state()
    cached = _scanned.get(group)
    if cached is None or cached[0] != state:
        cached = (state, tuple(metadata.entry_points(group=group)))
        _scanned[group] = cached
    return cached[1]


def entry_points(group: str) -> dict[str, list[metadata.EntryPoint]]:
    """Entry points of a group by name (several per name when distributions collide).

    With ``MMSK_DISABLE_PLUGIN_AUTOLOAD=1`` only mmsk's own entry points are read.
    """
    group = _group(group)
    found: dict[str, list[metadata.EntryPoint]] = {}
    for ep in _scan(group):
        if autoload_disabled() and _dist(ep) != "mmsk":
            continue
        same = found.setdefault(ep.name, [])
        if all(_dist(ep) != _dist(other) for other in same):
            same.append(ep)
    return found


def register(group: str, name: str, obj: Any) -> None:
    """Register a component class under ``name`` in this process (for notebooks).

    Registering the same name again replaces the earlier registration, so a
    notebook cell can be re-run; a name an installed distribution provides
    cannot be shadowed.

    Examples
    --------
    >>> from mmsk.components import MLPEncoder
    >>> class WideMLP(MLPEncoder):
    ...     pass
    >>> register("encoder", "wide_mlp", WideMLP)
    >>> "wide_mlp" in names("encoder")
    True
    """
    group = _group(group)
    if not isinstance(name, str) or not name.isidentifier():
        raise ParameterError(
            "Expected a name that is a Python identifier, like 'my_encoder'. "
            f"Received: name={name!r}"
        )
    taken = entry_points(group).get(name)
    if taken:
        raise PluginError(
            f"{name!r} is already provided by distribution {_dist(taken[0])!r} in {group}; "
            "register your component under another name"
        )
    _registered[group][name] = obj


def unregister(group: str, name: str) -> None:
    """Remove a name added with :func:`register`."""
    _registered[_group(group)].pop(name, None)


def names(group: str) -> list[str]:
    """Sorted names available in a group."""
    group = _group(group)
    return sorted({*entry_points(group), *_registered[group]})


def load(group: str, name: str) -> Any:
    """Return the component class registered under ``name``, importing it now.

    Raises
    ------
    UnknownComponentError
        No such name; the message lists the available ones.
    PluginError
        Several distributions declare the name (all are named), or the
        plugin failed to import (its distribution and the cause are named).
    """
    group = _group(group)
    if name in _registered[group]:
        return _registered[group][name]
    eps = entry_points(group).get(name)
    if not eps:
        raise UnknownComponentError(f"Unknown {_short(group)} {name!r}. Available: {names(group)}")
    if len(eps) > 1:
        raise PluginError(
            f"{_short(group)} {name!r} is provided by several distributions: "
            f"{', '.join(sorted(_dist(ep) for ep in eps))}; uninstall all but one"
        )
    key = (group, name)
    if key not in _loaded:
        try:
            _loaded[key] = eps[0].load()
        except Exception as exc:
            _errors[key] = f"{type(exc).__name__}: {exc}"
            raise PluginError(
                f"{_short(group)} {name!r} from distribution {_dist(eps[0])!r} "
                f"({eps[0].value}) failed to import: {_errors[key]}"
            ) from exc
        _errors.pop(key, None)
    return _loaded[key]


def _info(group: str, name: str, eps: list[metadata.EntryPoint], check: bool) -> PluginInfo:
    target = eps[0].value
    kinds = static_kinds(eps[0]) if group == GROUPS["encoder"] else None
    status, error = "available", None
    if len(eps) > 1:
        status = "conflict"
        error = f"declared by {', '.join(sorted(_dist(ep) for ep in eps))}"
    else:
        if check:
            try:
                load(group, name)
            except PluginError:
                pass
        if (group, name) in _errors:
            status, error = "error", _errors[(group, name)]
        elif (group, name) in _loaded:
            status = "loaded"
            kinds = tuple(getattr(_loaded[(group, name)], "kinds", ()) or ()) or kinds
    dist = ", ".join(sorted(_dist(ep) for ep in eps))
    unknown = sorted(set(kinds or ()) - set(KINDS))
    if unknown:
        problem = f"kinds names unknown kinds {unknown}; expected some of {list(KINDS)}"
        warnings.warn(f"{_short(group)} {name!r} of {dist}: {problem}", UserWarning, stacklevel=3)
        error = error or problem
    return PluginInfo(
        name, _short(group), dist, ", ".join(sorted({_version(ep) for ep in eps})), kinds,
        status, error, target,
    )  # fmt: skip


def list_plugins(group: str | None = None, *, check: bool = False) -> list[PluginInfo]:
    """List encoders and fusions without importing them.

    Parameters
    ----------
    group : {"encoder", "fusion"}, optional
        One group only.
    check : bool, default=False
        Import every plugin now, to report the ones that fail.

    Returns
    -------
    list of PluginInfo
        Sorted by group and name.

    Examples
    --------
    >>> cnn = next(p for p in list_plugins("encoder") if p.name == "cnn")
    >>> cnn.distribution, cnn.kinds
    ('mmsk', ('image',))
    """
    groups = [_group(group)] if group else list(GROUPS.values())
    out = []
    for g in groups:
        for name, eps in sorted(entry_points(g).items()):
            out.append(_info(g, name, eps, check))
        for name, obj in sorted(_registered[g].items()):
            kinds = tuple(getattr(obj, "kinds", ()) or ()) or None
            out.append(PluginInfo(name, _short(g), "<registered>", "", kinds, "registered",
                                  None, f"{obj.__module__}:{obj.__qualname__}"))  # fmt: skip
    return out
