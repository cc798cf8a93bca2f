"""Plugin registry: encoders (``mmsk.encoders``) and fusions (``mmsk.fusions``) by name.

Listing reads installed distributions' entry points without importing them; a
plugin is imported the first time its name is used.  A plugin that fails to
import never breaks ``import mmsk``, the listing or other plugins.  Set
``MMSK_DISABLE_PLUGIN_AUTOLOAD=1`` to use mmsk's built-ins only.
"""

from mmsk.exceptions import PluginContractError, PluginError
from mmsk.plugins._registry import (
    DISABLE_ENV,
    PluginInfo,
    entry_points,
    list_plugins,
    load,
    names,
    register,
    unregister,
)

__all__ = [
    "DISABLE_ENV",
    "PluginContractError",
    "PluginError",
    "PluginInfo",
    "entry_points",
    "list_plugins",
    "load",
    "names",
    "register",
    "unregister",
]
