"""Find encoders and fusions by name: entry points plus in-process registrations.

Entry points are read with :mod:`importlib.metadata` (no import of plugin code
until a name is used).  mmsk's built-ins are entry points of the ``mmsk``
distribution, so built-ins and third-party plugins take one path.
"""

from __future__ import annotations

import os
from importlib import metadata
from typing import Any

from mmsk.exceptions import MmskError, UnknownComponentError

GROUPS = {"encoder": "mmsk.encoders", "fusion": "mmsk.fusions"}
_registered: dict[str, dict[str, Any]] = {group: {} for group in GROUPS.values()}


class PluginError(MmskError, ImportError):
    """A plugin could not be loaded, or two plugins claim the same name."""


def _group(group: str) -> str:
    if group in GROUPS:
        return GROUPS[group]
    if group in GROUPS.values():
        return group
    raise ValueError(f"Expected a group in {sorted(GROUPS)}. Received: group={group!r}")


def _dist(ep: metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "<unknown distribution>"


def entry_points(group: str) -> dict[str, list[metadata.EntryPoint]]:
    """Entry points of a group by name (several per name when plugins collide).

    With ``MMSK_DISABLE_PLUGIN_AUTOLOAD=1`` only mmsk's own entry points are read.
    """
    group = _group(group)
    only_builtins = os.environ.get("MMSK_DISABLE_PLUGIN_AUTOLOAD", "") not in ("", "0")
    found: dict[str, list[metadata.EntryPoint]] = {}
    for ep in metadata.entry_points(group=group):
        if only_builtins and _dist(ep) != "mmsk":
            continue
        found.setdefault(ep.name, [])
        if all(ep.value != other.value for other in found[ep.name]):
            found[ep.name].append(ep)
    return found


def register(group: str, name: str, obj: Any) -> None:
    """Register a component class (or factory) under ``name``, for notebooks.

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
    if name in entry_points(group):
        owner = _dist(entry_points(group)[name][0])
        raise PluginError(
            f"{name!r} is already provided by {owner!r} in {group}; pick another name"
        )
    _registered[group][name] = obj


def names(group: str) -> list[str]:
    """Sorted names available in a group."""
    group = _group(group)
    return sorted({*entry_points(group), *_registered[group]})


def load(group: str, name: str) -> Any:
    """Return the component class registered under ``name`` (importing it now)."""
    group = _group(group)
    if name in _registered[group]:
        return _registered[group][name]
    eps = entry_points(group).get(name)
    if not eps:
        raise UnknownComponentError(
            f"Unknown {group.split('.')[-1][:-1]} {name!r}. Available: {names(group)}"
        )
    if len(eps) > 1:
        raise PluginError(
            f"{name!r} in {group} is provided by several distributions: "
            f"{sorted(_dist(ep) for ep in eps)}; uninstall one of them"
        )
    try:
        return eps[0].load()
    except Exception as exc:
        raise PluginError(
            f"plugin {name!r} of distribution {_dist(eps[0])!r} failed to import: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
