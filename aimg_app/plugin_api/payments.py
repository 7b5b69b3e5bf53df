"""The payment-processor plugin family: vendors that sell PRO tiers.

A processor builds payment links for plan prices, receives its vendor's webhooks or
postbacks on ``/webhooks/<identifier>`` (mounted by the core), turns them into
``SubscriptionEvent``s, and cancels at period end where its vendor allows. The core owns
the rest: the payment event ledger (every delivery is stored before it is acted on, and a
duplicate changes nothing), the users' subscriptions and the tier engine.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..config import Domain
from ..errors import ApiError

# The kinds of SubscriptionEvent, in the vendor-neutral words the tier engine understands.
STARTED = "started"  # paid (first payment): the tier is granted until ``period_end``
RENEWED = "renewed"  # paid again: the tier runs until the new ``period_end``
CANCELLED = "cancelled"  # will not renew: the tier stays until ``period_end`` (or the current expiry)
REFUNDED = "refunded"  # money returned or charged back: the tier ends now
EXPIRED = "expired"  # ended (not renewed, suspended, deleted): the tier ends at ``period_end`` or now

# Days a billing period pays for, by BillingPlanPrice.period (a vendor may differ).
PERIOD_DAYS = {"daily": 1, "monthly": 30, "yearly": 365}
EVENT_KINDS = (STARTED, RENEWED, CANCELLED, REFUNDED, EXPIRED)


class PaymentError(ApiError):
    """A payment failed for a reason the user may read (``message`` must be user-safe: never
    a card number, a vendor's internal error or a secret)."""

    status = 400


class InvalidSignature(Exception):
    """Raised by ``PaymentProcessor.parse_webhook`` when a delivery is not authentic (bad or
    missing signature, stale timestamp, unknown source, or a state the vendor's API does not
    confirm). The core records it and answers 400."""


class MalformedWebhook(ValueError):
    """Raised by ``PaymentProcessor.parse_webhook`` when an authentic delivery lacks a field
    it must carry or carries a value outside the vendor's vocabulary. The core records it and
    answers 400; nothing is applied (a missing status is never read as success)."""


def mapping(value: Any, name: str) -> Mapping[str, Any]:
    """``value`` when it is a JSON object ({} when absent), else ``MalformedWebhook``: read a
    vendor's nested objects through it, so a list or a string where an object belongs is
    refused, not a crash."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedWebhook(f"{name} is not an object")
    return value


def required(data: Mapping[str, Any], *names: str) -> list[Any]:
    """The values of ``names`` in ``data``; ``MalformedWebhook`` when one is missing or empty
    (or ``data`` is not an object)."""
    if not isinstance(data, Mapping):
        raise MalformedWebhook("the payload is not an object")
    missing = [n for n in names if data.get(n) in (None, "")]
    if missing:
        raise MalformedWebhook(f"missing {', '.join(missing)}")
    return [data[n] for n in names]


def one_of(value: Any, allowed, name: str) -> Any:
    """``value`` when it is one of ``allowed``, else ``MalformedWebhook``."""
    if value not in allowed:
        raise MalformedWebhook(f"unknown {name} {str(value)[:40]!r}")
    return value


def number(value: Any, name: str) -> float:
    """A vendor's amount as a float, else ``MalformedWebhook``."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise MalformedWebhook(f"{name} is not a number: {str(value)[:30]!r}") from None


def vendor_time(value: Any, fmt: str | None = None, tz: dt.tzinfo = dt.UTC) -> dt.datetime | None:
    """A vendor's date-time as naive UTC (what the core stores); None when absent.
    ``fmt``: a ``strptime`` format (else ISO 8601, ``Z`` allowed); ``tz``: the zone of a time
    that names none. ``MalformedWebhook`` when it does not parse."""
    if value in (None, ""):
        return None
    try:
        text = str(value)
        parsed = dt.datetime.strptime(text, fmt) if fmt else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedWebhook(f"unreadable time {str(value)[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(dt.UTC).replace(tzinfo=None)


def epoch_seconds(value: Any) -> dt.datetime | None:
    """A vendor's Unix timestamp as naive UTC (what the core stores); None when absent;
    ``MalformedWebhook`` for a time no calendar holds (``1e20``)."""
    if not value:
        return None
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError, TypeError):
        raise MalformedWebhook(f"timestamp out of range: {str(value)[:30]}") from None


@dataclass(frozen=True)
class PlanPrice:
    """One price of a billing plan, as a processor sees it. ``product_id`` names it everywhere
    (payment links, webhooks, subscriptions)."""

    product_id: str
    plan_id: str
    plan_name: str
    tier: int
    type: str
    period: str
    currency: str
    currency_type: str
    value: float
    trial_days: int | None = None
    name: str | None = None
    code_only: bool = False  # a special plan's price: offered only with the plan's code


@dataclass(frozen=True)
class PayerReference:
    """What a reference the core issued (``Checkout.reference``) says, once verified: the
    account that started the checkout and the product it was for."""

    user_id: str
    product_id: str


@dataclass(frozen=True)
class Payer:
    """The signed-in user a payment is for."""

    user_id: str
    email: str
    username: str = ""


@dataclass(frozen=True)
class Checkout:
    """What a processor needs to build a payment link.

    ``checkout_url`` is the core's own link that, when followed by the user, calls
    ``start_checkout`` (for vendors whose checkout must be created through their API at the
    moment of purchase); ``webhook_url`` is where the vendor must send its notifications.
    """

    price: PlanPrice
    domain: Domain
    payer: Payer | None
    redirect_url: str | None
    payment_page_url: str | None
    checkout_url: str
    webhook_url: str
    # An opaque reference the core issued for this payer, product and site (signed with a
    # key of this processor's own): carry it through the vendor's metadata/custom field and
    # read it back with ``WebhookRequest.reference_of``. None without a signed-in payer.
    reference: str | None = None


# Where a SubscriptionEvent's ``email`` comes from, which decides whether it may find the payer
# (only when neither ``user_id`` nor ``external_account_id`` does):
EMAIL_TRUSTED = "trusted"  # chosen by us or an admin (a configured list): any account with that address
EMAIL_VENDOR_VERIFIED = "vendor_verified"  # the vendor states it verified it: only an account whose email is verified
EMAIL_UNVERIFIED = "unverified"  # typed by the payer: never grants; the delivery is held for admin review


@dataclass(frozen=True)
class SubscriptionEvent:
    """A change of one vendor subscription, with the vendor's own timestamp.

    Events of one subscription are applied in ``occurred_at`` order: an event older than the
    last one applied is recorded and skipped, so out-of-order deliveries settle right. The
    payer is found by ``user_id`` (passed through the vendor), else by the account linked
    to ``external_account_id``, else by ``email``.
    """

    kind: str
    subscription_id: str | None
    occurred_at: dt.datetime
    user_id: str | None = None
    email: str | None = None
    external_account_id: str | None = None
    product_id: str | None = None
    tier: int | None = None
    period_end: dt.datetime | None = None
    renews: bool = True
    payer_id: str | None = None
    payment_id: str | None = None
    amount: float | None = None
    currency: str | None = None
    additional_information: str | None = None
    email_source: str = EMAIL_TRUSTED

    def __post_init__(self):
        if self.email_source not in (EMAIL_TRUSTED, EMAIL_VENDOR_VERIFIED, EMAIL_UNVERIFIED):
            raise ValueError(f"unknown email_source {self.email_source!r}")
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown subscription event kind {self.kind!r}")
        if not self.subscription_id and not self.payment_id:
            raise ValueError("a subscription event needs a subscription_id or a payment_id")


@dataclass(frozen=True)
class WebhookRequest:
    """An incoming webhook/postback, independent of the web framework. ``headers`` keys are
    lower-case; ``body`` is the raw bytes (signatures are computed over them)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    args: Mapping[str, str]
    form: Mapping[str, str]
    remote_addr: str
    received_at: dt.datetime
    # The price a product id sells, as our plans define it (None: no such product), so a
    # delivery can be checked against what we actually sell.
    price_of: Callable[[str], PlanPrice | None] = lambda _product_id: None
    # The price a subscription of this processor we already hold was bought at (None: unknown).
    subscription_price: Callable[[str], PlanPrice | None] = lambda _subscription_id: None
    # What a ``Checkout.reference`` read back from the vendor says (None: absent, forged, or
    # issued for another processor or site).
    reference_of: Callable[[Any], PayerReference | None] = lambda _text: None

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON (``MalformedWebhook`` when it is not JSON)."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors; too deep a body
            raise MalformedWebhook("the body is not JSON") from None


@dataclass
class WebhookResult:
    """What a delivery means: the vendor's unique id for it (a duplicate id changes nothing),
    its type, and the subscription events it carries (possibly none)."""

    event_id: str
    event_type: str
    events: list[SubscriptionEvent] = field(default_factory=list)
    response_text: str | None = None  # a plain-text answer some vendors require (else the JSON envelope)
    # An authentic payment we will not grant by itself (e.g. nothing binds it to the account
    # that started the checkout): the reason; the core records the delivery as ``review`` for an
    # admin and applies none of ``events``.
    review: str | None = None


@dataclass(frozen=True)
class CardDetails:
    """Card data for a direct charge. It must never be logged, stored or echoed: ``repr``
    shows the last four digits only."""

    number: str = field(repr=False)
    holder_name: str
    expiration_month: int
    expiration_year: int
    security_code: str = field(repr=False)
    street: str | None = None
    city: str | None = None
    state_or_province: str | None = None
    postal_code: str | None = None
    country: str | None = None
    email: str | None = None
    phone_number: str | None = None

    @property
    def last4(self) -> str:
        return self.number[-4:]

    def __repr__(self) -> str:
        return f"CardDetails(****{self.last4}, exp={self.expiration_month:02d}/{self.expiration_year})"


@dataclass(frozen=True)
class CardCharge:
    """A successful direct charge: the vendor's subscription (or transaction) id and until when it is paid."""

    subscription_id: str
    occurred_at: dt.datetime
    period_end: dt.datetime | None
    payment_id: str | None = None
    payer_id: str | None = None
    renews: bool = True


@dataclass(frozen=True)
class SubscriptionRef:
    """A subscription the core holds, as given to ``cancel_at_period_end``."""

    subscription_id: str
    product_id: str
    user_id: str
    email: str
    payer_id: str | None
    period_end: dt.datetime | None


class PaymentProcessor:
    """Base class of a payment processor. Subclass it and return the subclass from
    ``register_payment_processors``; the core instantiates it once per application with the
    plugin's settings (``[plugins.<identifier>]``).

    ``identifier`` (the contract's ``paymentProvider`` value, e.g. ``stripe``) and ``label``
    are required; everything else has a safe default: no payment link, no webhooks, no
    cancellation through the vendor (the core then mails ``cancellation_instructions``).
    Methods that talk to the vendor must use timeouts and raise ``PaymentError`` with a
    user-safe message on a refusal.
    """

    identifier: str = ""
    label: str = ""
    accepts_cards: bool = False  # True when ``charge_card`` is implemented (processCardSubscription)

    def __init__(self, settings: Mapping[str, Any]):
        """``settings``: this processor's configuration mapping (may be empty)."""
        if not self.identifier or not self.label:
            raise NotImplementedError(f"{type(self).__name__} must set identifier and label")
        self.settings = dict(settings)

    def payment_url(self, checkout: Checkout) -> str | None:
        """The ``paymentUrl`` of the price of ``checkout`` (a ``Checkout``) for its payer.

        Called for every price offering this processor on every ``getBillingPlans``, so it
        must not call the vendor: build a static link, or return ``checkout.checkout_url``
        and do the vendor call in ``start_checkout``. Return None when the price cannot be
        bought here (it is then left out of the plan's providers)."""
        return None

    def start_checkout(self, checkout: Checkout) -> str:
        """Called when the user follows the ``checkout_url`` of ``checkout``: create the
        vendor's checkout for it and return the URL to send the user to. Raise ``PaymentError`` when
        it cannot be created."""
        raise PaymentError(f"{self.label} does not offer checkout links.")

    def parse_webhook(self, request: WebhookRequest) -> WebhookResult:
        """Called for each request to ``/webhooks/<identifier>``: verify ``request`` (a
        ``WebhookRequest``) by the vendor's rules, raising ``InvalidSignature`` when it is not
        authentic, and return a ``WebhookResult``. It must not change any state: the core
        records the result before it applies the events."""
        raise PaymentError(f"{self.label} does not send webhooks.", status=404)

    def cancel_at_period_end(self, subscription: SubscriptionRef) -> bool:
        """Called by ``cancelMembership``: ask the vendor to stop renewing ``subscription``
        (a ``SubscriptionRef``) at the end of the paid period. Return True when done, False
        when the vendor does not allow it (the core then mails ``cancellation_instructions``)."""
        return False

    def cancellation_instructions(self, domain: Domain) -> str:
        """The text mailed to a user of ``domain`` who asks to cancel a subscription this
        processor cannot cancel itself."""
        return (f"Your {domain.display_name} membership is billed through {self.label}. To stop it, open your "
                f"{self.label} account, find the subscription and cancel it there. You keep your PRO tier until "
                "the end of the period you paid for.")

    def charge_card(self, card: CardDetails, checkout: Checkout) -> CardCharge:
        """Called by ``processCardSubscription`` when ``accepts_cards`` is True: charge ``card``
        (a ``CardDetails``, already validated) for the price of ``checkout`` and return a
        ``CardCharge``. Never log or keep ``card``; raise ``PaymentError`` on a decline."""
        raise PaymentError(f"{self.label} does not accept card payments.")

    def poll_subscriptions(self, domain: Domain, credentials: Mapping[str, Any] | None) -> list[SubscriptionEvent]:
        """Called by the scheduled sync job for vendors without webhooks: read the current
        subscribers of ``domain`` with ``credentials`` (e.g. the stored admin cookies; None
        when the core holds none) and return their state as events. Default: nothing."""
        return []
