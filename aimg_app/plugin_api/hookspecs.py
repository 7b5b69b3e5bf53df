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


@hookspec
def register_login_providers():
    """Called once per application at start-up.

    Return a list of ``LoginProvider`` subclasses (OAuth 2.0 authorization-code providers);
    each is instantiated with its settings and served at ``/auth/<identifier>``. Identifiers
    must be unique across plugins.
    """


# --- payment processors (billing) ---------------------------------------------------------


@hookspec
def register_payment_processors():
    """Called once per application at start-up.

    Return a list of ``PaymentProcessor`` subclasses; each is instantiated with its settings
    (``[plugins.<identifier>]``). Its ``identifier`` is the contract's ``paymentProvider``
    value; its webhooks are received on ``/webhooks/<identifier>``. When two plugins give
    the same identifier, the application refuses to start.
    """


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


@hookspec
def register_workflow_templates():
    """Called once per application (and per worker process) at start-up.

    Return a list of ``WorkflowTemplate`` subclasses; each is instantiated with its settings
    (``[plugins.<identifier>]``) and offered by ``/2/getAggregatedWorkflowTemplates`` and
    ``/2/enqueueWorkflow``. Identifiers must be unique across plugins (a duplicate is an
    error at start-up).
    """


@hookspec
def register_models():
    """Called once per application at start-up.

    Return a list of ``GenerationModel`` subclasses (the legacy ``generateImage`` and
    ``generateVideo`` catalogue, listed by ``getModels`` in plugin order); each names the
    workflow template it runs on.
    """


@hookspec
def filter_prompt(prompt, user):
    """Called for every generation request, before anything is queued.

    ``prompt`` is the positive prompt as the user typed it; ``user`` is a ``PromptUser``
    (``user_id`` is None for an anonymous caller). Return a list of the words of ``prompt``
    to ignore (they are removed from the prompt and reported as ``ignoredWords``), or None.
    The answers of all plugins are combined. Must be fast and must not perform network I/O.
    """
