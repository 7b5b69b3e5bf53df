"""One collector and one duplicate rule for every plugin family, applied at start-up."""
from __future__ import annotations

import pytest

from aimg_app.plugin_api import hookimpl

FAMILIES = ["register_affiliate_ad_providers", "register_login_providers", "register_payment_processors",
            "register_workflow_templates", "register_models", "register_report_queues"]


def _a_registered_class(make_app, hook):
    app = make_app()
    resources = app.extensions["aimg"]
    family = {"register_affiliate_ad_providers": resources.affiliate_ad_providers,
              "register_login_providers": resources.login_providers,
              "register_payment_processors": resources.payment_processors,
              "register_workflow_templates": resources.workflow_templates,
              "register_models": resources.generation_models,
              "register_report_queues": resources.report_queues}[hook]
    things = list(family.values()) if isinstance(family, dict) else list(family)
    return type(things[0])


@pytest.mark.parametrize("hook", FAMILIES)
def test_a_duplicate_identifier_stops_the_start(make_app, hook):
    existing = _a_registered_class(make_app, hook)

    class Clash(existing):
        pass

    class Plugin:
        pass

    setattr(Plugin, hook, hookimpl(lambda self: [Clash]))
    with pytest.raises(ValueError, match=f"two plugins register the .*{existing.identifier!r}"):
        make_app(plugins=[Plugin()])
