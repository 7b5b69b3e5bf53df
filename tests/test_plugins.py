"""The plugin system: documented hooks, entry-point discovery, blocking, typo detection."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pluggy
import pytest

from aimg_app.plugin_api import (AffiliateAdProvider, GenerationModel, LoginProvider, PaymentProcessor, ReportQueue,
                                 WorkflowTemplate, hookimpl, hookspecs)
from aimg_app.plugin_api.manager import build_plugin_manager
from tests.plugins import every_hook

HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "aimg_spec")]


def test_there_are_hooks():
    assert {"register_affiliate_ad_providers", "register_blueprints"} <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_documented(name):
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Called" in doc and ("Return" in doc or "return" in doc), f"{name} lacks 'Called ...' / 'Return ...' docs"
    for param in inspect.signature(getattr(hookspecs, name)).parameters:
        assert f"``{param}``" in doc, f"{name} does not document its argument {param}"


@pytest.mark.parametrize("base", [AffiliateAdProvider, LoginProvider, PaymentProcessor, GenerationModel, WorkflowTemplate,
                                  ReportQueue])
def test_plugin_base_classes_are_documented(base):
    assert inspect.getdoc(base)
    for name, member in inspect.getmembers(base, inspect.isfunction):
        if name.startswith("_") and name != "__init__":
            continue
        doc = inspect.getdoc(member) or ""
        assert doc, f"{base.__name__}.{name} lacks a docstring"
        for param in list(inspect.signature(member).parameters)[1:]:
            assert f"``{param}``" in doc, f"{base.__name__}.{name} does not document {param}"


def test_the_test_plugin_implements_every_hook():
    pm = build_plugin_manager(extra_plugins=[every_hook])
    implemented = {caller.name for caller in pm.get_hookcallers(every_hook)}
    assert implemented == set(HOOKS)


def test_first_party_plugins_load_through_entry_points():
    pm = build_plugin_manager()
    assert "affiliate_ads" in dict(pm.list_name_plugin())
    assert any(dist.project_name == "aimg" for _, dist in pm.list_plugin_distinfo())


def test_a_blocked_plugin_is_not_loaded():
    pm = build_plugin_manager(disabled=["affiliate_ads"])
    assert pm.is_blocked("affiliate_ads")
    assert pm.hook.register_affiliate_ad_providers() == []


def test_a_hookimpl_without_a_spec_fails_at_start_up():
    class Typo:
        @hookimpl
        def register_affiliate_ad_provider(self):  # missing "s"
            return []

    with pytest.raises(pluggy.PluginValidationError):
        build_plugin_manager(extra_plugins=[Typo()])


def test_aimg_plugins_lists_what_each_plugin_provides():
    out = subprocess.run([sys.executable, "-m", "aimg_app", "plugins", "--json"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["affiliate_ads"]["hooks"] == {"register_affiliate_ad_providers": ["affiliate_ads"]}
