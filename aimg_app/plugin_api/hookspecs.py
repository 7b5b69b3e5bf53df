"""Every hook a plugin can implement, grouped by family.

Hooks named ``register_<things>`` return a list of classes (or objects) that the core
instantiates or mounts; results of all plugins are concatenated. A hook that may be
answered by one plugin only says so ("first non-None result wins").
"""
from __future__ import annotations

from . import hookspec

# --- misc: affiliate ads --------------------------------------------------------------


@hookspec
def register_affiliate_ad_providers():
    """Called once per application at start-up.

    Return a list of ``AffiliateAdProvider`` subclasses; each is instantiated with its
    settings (``[plugins.<identifier>]``) and consulted by ``getAffiliateAd``.
    """


# --- misc: HTTP routes (webhooks, callbacks) -------------------------------------------


@hookspec
def register_blueprints():
    """Called once per application at start-up, after the core's own routes.

    Return a list of ``flask.Blueprint`` objects to mount (e.g. a payment processor's
    webhook receiver). A blueprint's routes must not collide with the contract's paths.
    Views should answer with ``aimg_app.plugin_api`` errors so the envelope is kept.
    """


# --- login providers (identity) -----------------------------------------------------------


# --- payment processors (billing) ---------------------------------------------------------


# --- report queues (library and moderation) -----------------------------------------------


@hookspec
def register_report_queues():
    """Called once per application at start-up.

    Return a list of ``ReportQueue`` subclasses; each is instantiated with its settings
    (``[plugins.<identifier>]``). User queues are the categories of ``reportItems``;
    system queues (``system = True``) are shown to admins and open reports themselves when
    an Item completes. Results of all plugins are concatenated; an identifier declared
    twice keeps its first declaration.
    """


# --- workflow templates, generation models, prompt filters (generation) -------------------
