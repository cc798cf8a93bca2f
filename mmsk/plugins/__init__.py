"""Plugin registry: encoders (``mmsk.encoders``) and fusions (``mmsk.fusions``) by name."""

from mmsk.plugins._registry import PluginError, entry_points, load, names, register

__all__ = ["PluginError", "entry_points", "load", "names", "register"]
