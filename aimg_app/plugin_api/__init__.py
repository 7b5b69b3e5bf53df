"""What a plugin may import: the hook markers, the base classes of each plugin family, and
the small value types they receive and return. Plugins import nothing else from the core.

A plugin is a module (or object) with functions marked ``@hookimpl``, published through the
``aimg`` entry-point group of its package::

    [options.entry_points]
    aimg =
        my_plugin = my_package.my_plugin

See ``hookspecs.py`` for every hook, when it is called and what it returns.
"""
from __future__ import annotations

import pluggy

PROJECT_NAME = "aimg"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

from ..config import Domain  # noqa: E402  (a plain value type plugins receive)
from ..errors import ApiError, BadRequest, Conflict, Forbidden, NotFound, Unauthorized  # noqa: E402
from .ads import AffiliateAd, AffiliateAdProvider  # noqa: E402
from .login import LoginProvider, OAuthIdentity  # noqa: E402
from .payments import (  # noqa: E402
    CANCELLED,
    EMAIL_TRUSTED,
    EMAIL_UNVERIFIED,
    EMAIL_VENDOR_VERIFIED,
    EXPIRED,
    PERIOD_DAYS,
    REFUNDED,
    RENEWED,
    STARTED,
    CardCharge,
    CardDetails,
    Checkout,
    InvalidSignature,
    MalformedWebhook,
    Payer,
    PaymentError,
    PayerReference,
    PaymentProcessor,
    PlanPrice,
    SubscriptionEvent,
    SubscriptionRef,
    WebhookRequest,
    WebhookResult,
    epoch_seconds,
    mapping,
    number,
    one_of,
    required,
    vendor_time,
)
from .reports import ReportQueue, ReviewedItem  # noqa: E402
from .workflows import (  # noqa: E402
    GenerationModel,
    PromptUser,
    SampleImage,
    SamplePrompt,
    TemplateFile,
    TemplateParameter,
    WorkflowTemplate,
)

__all__ = [
    "PROJECT_NAME",
    "hookspec",
    "hookimpl",
    "Domain",
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "Unauthorized",
    "AffiliateAd",
    "AffiliateAdProvider",
    "LoginProvider",
    "OAuthIdentity",
    "STARTED",
    "RENEWED",
    "CANCELLED",
    "REFUNDED",
    "EXPIRED",
    "PERIOD_DAYS",
    "EMAIL_TRUSTED",
    "EMAIL_VENDOR_VERIFIED",
    "EMAIL_UNVERIFIED",
    "PayerReference",
    "CardCharge",
    "CardDetails",
    "Checkout",
    "InvalidSignature",
    "MalformedWebhook",
    "Payer",
    "PaymentError",
    "PaymentProcessor",
    "PlanPrice",
    "SubscriptionEvent",
    "SubscriptionRef",
    "WebhookRequest",
    "WebhookResult",
    "epoch_seconds",
    "mapping",
    "number",
    "one_of",
    "required",
    "vendor_time",
    "GenerationModel",
    "PromptUser",
    "SampleImage",
    "SamplePrompt",
    "TemplateFile",
    "TemplateParameter",
    "WorkflowTemplate",
    "ReportQueue",
    "ReviewedItem",
]
