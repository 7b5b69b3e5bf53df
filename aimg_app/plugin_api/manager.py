"""The plugin manager: entry points of the ``aimg`` group, with a block list."""
from __future__ import annotations

from typing import Any, Iterable

import pluggy

from . import PROJECT_NAME, hookspecs


def build_plugin_manager(disabled: Iterable[str] = (), extra_plugins: Iterable[Any] = ()) -> pluggy.PluginManager:
    """Load every plugin published under the ``aimg`` entry-point group (first-party ones
    included), except the names in ``disabled``; then register ``extra_plugins`` (tests)."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in disabled:
        pm.set_blocked(name)
    pm.load_setuptools_entrypoints(PROJECT_NAME)
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()  # a hookimpl without a spec is a typo: fail at start-up, not silently
    return pm


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """What each loaded plugin provides: its hooks and, for ``register_*`` hooks, the names."""
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            rows.append({"name": name, "blocked": True, "hooks": {}})
            continue
        hooks: dict[str, list[str]] = {}
        for caller in pm.get_hookcallers(plugin) or []:
            provided: list[str] = []
            if caller.name.startswith("register_"):
                impl = next(i for i in caller.get_hookimpls() if i.plugin is plugin)
                for thing in impl.function() or []:
                    provided.append(
                        getattr(thing, "identifier", None) or getattr(thing, "name", None) or repr(thing)
                    )
            hooks[caller.name] = provided
        rows.append({"name": name, "blocked": False, "hooks": hooks})
    return rows
