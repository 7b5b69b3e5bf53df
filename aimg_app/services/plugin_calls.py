"""Calling into a plugin from a page that also shows other things.

A plugin's bug degrades its own contribution, never the whole page: its exception is
logged with the plugin's identifier and the caller gets ``default``.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger("aimg.plugins")


def isolated(plugin: Any, what: str, call: Callable[..., Any], *args: Any, default: Any = None, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except Exception:  # noqa: BLE001 - any bug of any plugin: logged, then left out of the page
        log.exception("plugin %s failed in %s", getattr(plugin, "identifier", type(plugin).__name__), what,
                      extra={"plugin": getattr(plugin, "identifier", None), "hook": what})
        return default
