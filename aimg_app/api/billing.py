"""The contract's Premium Membership Management chapter, plus the routes the payment
vendors call: ``/webhooks/<processor>`` and the checkout links ``/checkout/<processor>``."""
from __future__ import annotations

import datetime as dt
import logging
import re
from urllib.parse import urlsplit, urlunsplit

from flask import Response, redirect, request
from marshmallow import Schema, fields, validate

from .. import context
from ..envelope import ok
from ..errors import BadRequest, Forbidden, NotFound
from ..models.base import iso, utcnow
from ..plugin_api import WebhookRequest
from ..ratelimit import client_key, limiter
from ..services import giftcards as giftcards_service
from ..services import sealing
from ..services import memberships as memberships_service
from ..services import payer_refs
from ..services import plans as plans_service
from ..services import webhooks as webhooks_service
from ..services.ratelimits import enforce
from ..services.users import normalize_email
from .base import Blueprint, ContractSchema, admin_only, envelope, success_schema
from .fields import derived

log = logging.getLogger("aimg.billing")

blp = Blueprint("billing", __name__, url_prefix="/", description="Premium Membership Management.")

PROVIDERS = ["arkpay", "boosty", "ccbill", "epoch", "g2a", "helio", "nmi", "patreon", "paypal", "stripe", "giftcard",
             "admin", "whitelist", "other", "none"]
PRICE_TYPES = ["base", "discount", "bundle", "trial", "free", "giftcard", "other", "none"]
PERIODS = ["daily", "monthly", "yearly", "lifetime", "none"]
CURRENCIES = ["USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF", "CNY", "BTC", "ETH", "SOL", "BNB", "MATIC", "USDC", "USDT",
              "none"]
CURRENCY_TYPES = ["fiat", "crypto", "other", "none"]
TIER = validate.Range(min=1, max=9)
CHECKOUT_TOKEN_AGE_S = 24 * 3600
_SHORT = validate.Length(min=1, max=200)
# Characters a front-end URL never needs raw (they must be percent-encoded): controls, space,
# quotes, angle brackets, backslash and the other RFC 3986 "unwise" ones; "%" only as an escape.
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\\"'<>`{}|^]|%(?![0-9A-Fa-f]{2})")


# --- schemas ------------------------------------------------------------------------------


class PaymentProviderSchema(Schema):
    paymentProvider = fields.String(required=True, validate=validate.OneOf(PROVIDERS))
    paymentLabel = fields.String(validate=validate.Length(max=200))
    paymentUrl = fields.String(validate=validate.Length(max=2048), metadata={
        "description": "On createBillingPlan: an optional fixed link; else the processor builds it."})


class PlanPriceSchema(Schema):
    productID = fields.String(validate=validate.Length(min=1, max=128), metadata={
        "description": "The product this price sells (generated when absent); used by processCardSubscription."})
    name = fields.String(validate=validate.Length(max=200))
    type = fields.String(required=True, validate=validate.OneOf(PRICE_TYPES))
    period = fields.String(required=True, validate=validate.OneOf(PERIODS))
    currency = fields.String(required=True, validate=validate.OneOf(CURRENCIES))
    currencyType = fields.String(required=True, validate=validate.OneOf(CURRENCY_TYPES))
    value = fields.Float(required=True, validate=validate.Range(min=0, max=1_000_000))
    trialDays = fields.Integer(validate=validate.Range(min=0, max=365))
    paymentProviders = fields.List(fields.Nested(PaymentProviderSchema), required=True,
                                   validate=validate.Length(min=1, max=20))


class BillingPlanPaymentProviderSchema(ContractSchema):
    """The contract's BillingPlanPaymentProvider, read from a ``plans.PaymentLink``."""

    paymentProvider = fields.String(required=True, attribute="payment_provider", metadata={"enum": PROVIDERS})
    paymentLabel = fields.String(allow_none=True, attribute="payment_label")
    paymentUrl = fields.String(required=True, attribute="payment_url")


class BillingPlanPriceSchema(ContractSchema):
    """The contract's BillingPlanPrice, read from a ``plans.OfferedPrice``."""

    productID = fields.String(attribute="price.product_id")
    name = derived(fields.String, lambda p: p.price.name or None)
    type = fields.String(required=True, attribute="price.type", metadata={"enum": PRICE_TYPES})
    period = fields.String(required=True, attribute="price.period", metadata={"enum": PERIODS})
    currency = fields.String(required=True, attribute="price.currency", metadata={"enum": CURRENCIES})
    currencyType = fields.String(required=True, attribute="price.currency_type", metadata={"enum": CURRENCY_TYPES})
    value = fields.Float(required=True, attribute="price.value")
    trialDays = fields.Integer(attribute="price.trial_days")
    paymentProviders = fields.List(fields.Nested(BillingPlanPaymentProviderSchema), required=True,
                                   attribute="payment_links")


class BillingPlanSchema(ContractSchema):
    """The contract's BillingPlan, read from a ``plans.OfferedPlan``."""

    id = fields.String(required=True, attribute="plan.id")
    name = fields.String(required=True, attribute="plan.name")
    description = derived(fields.String, lambda p: p.plan.description or None)
    features = fields.List(fields.String(), attribute="plan.features")
    mainBenefits = fields.List(fields.String(), attribute="plan.main_benefits")
    prices = fields.List(fields.Nested(BillingPlanPriceSchema), required=True)
    tier = fields.Integer(required=True, attribute="plan.tier")


class CreateBillingPlanSchema(Schema):
    name = fields.String(required=True, validate=_SHORT)
    description = fields.String(validate=validate.Length(max=5000))
    features = fields.List(fields.String(validate=validate.Length(max=500)), validate=validate.Length(max=100))
    mainBenefits = fields.List(fields.String(validate=validate.Length(max=500)), validate=validate.Length(max=100))
    prices = fields.List(fields.Nested(PlanPriceSchema), required=True, validate=validate.Length(min=1, max=50))
    tier = fields.Integer(required=True, validate=TIER)
    env = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,32}$"))
    code = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "Makes the plan special: getBillingPlans shows it only to callers giving this code."})


class GetBillingPlansSchema(Schema):
    redirectURL = fields.String(validate=validate.Length(max=2048))
    paymentURL = fields.String(validate=validate.Length(max=2048))
    planIDs = fields.String(validate=validate.Length(max=10_000))
    code = fields.String(validate=validate.Length(max=100))


class SetAdminTierSchema(Schema):
    productId = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"))
    email = fields.String(validate=validate.Length(min=3, max=254))
    emails = fields.List(fields.String(validate=validate.Length(min=3, max=254)), validate=validate.Length(min=1, max=1000))
    tier = fields.Integer(required=True, validate=TIER)
    isActive = fields.Boolean(required=True)
    deactivationDate = fields.AwareDateTime(default_timezone=dt.UTC)
    additionalInformation = fields.String(validate=validate.Length(max=2000))


class AdminTierSchema(Schema):
    _id = fields.String(data_key="_id")
    domain = fields.String()
    paymentProvider = fields.String()
    productId = fields.String()
    email = fields.String()
    emails = fields.List(fields.String())
    tier = fields.Integer()
    isActive = fields.Boolean()
    createdDate = fields.String()
    updatedDate = fields.String()
    deactivationDate = fields.String()
    env = fields.String()
    additionalInformation = fields.String()


class CardSubscriptionSchema(Schema):
    merchantProcessor = fields.String(required=True, validate=validate.Length(min=1, max=32))
    productID = fields.String(required=True, validate=validate.Length(min=1, max=128))
    code = fields.String(validate=validate.Length(max=100), metadata={
        "description": "The code a special plan was listed with (getBillingPlans?code=); needed to buy its prices."})
    cardNumber = fields.String(required=True, validate=validate.Length(min=1, max=40))
    cardHolderName = fields.String(required=True, validate=_SHORT)
    expirationMonth = fields.Integer(required=True, strict=False)
    expirationYear = fields.Integer(required=True, strict=False, validate=validate.Range(min=0, max=9999))
    securityCode = fields.String(required=True, validate=validate.Length(min=1, max=8))
    street = fields.String(validate=validate.Length(max=200))
    city = fields.String(validate=validate.Length(max=200))
    stateOrProvince = fields.String(validate=validate.Length(max=10))
    postalCode = fields.String(validate=validate.Length(max=20))
    country = fields.String(validate=validate.Length(max=10))
    billingEmail = fields.String(validate=validate.Length(min=3, max=254))
    phoneNumber = fields.String(validate=validate.Length(max=40))


class PayWithCardEmailSchema(Schema):
    email = fields.String(validate=validate.Length(min=3, max=254))


class BoostyCookiesSchema(Schema):
    accountId = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,100}$"))
    domainIdentifier = fields.String(validate=validate.Length(min=1, max=253))
    cookies = fields.List(fields.Raw(), required=True, validate=validate.Length(min=1, max=200))


class RedeemGiftCardSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=200))


class DownloadGiftCardsSchema(Schema):
    distributionProvider = fields.String(load_default="giftcard", validate=validate.OneOf(["g2a", "giftcard"]))
    tier = fields.Integer(load_default=1, validate=TIER)
    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=3650))
    numberOfCards = fields.Integer(load_default=100, validate=validate.Range(min=1, max=10_000))
    usdPrice = fields.Float(load_default=0, validate=validate.Range(min=0, max=100_000))
    externalCodes = fields.String(validate=validate.Length(max=200_000))
    additionalInformation = fields.String(validate=validate.Length(max=2000))


SuccessMessage = success_schema("BillingSuccessMessageResponse", success=fields.Boolean(required=True),
                                message=fields.String())
SuccessOnly = success_schema("BillingSuccessResponse", success=fields.Boolean(required=True))
GiftCardRedeemed = success_schema("RedeemGiftCardResponse", productID=fields.String(), tier=fields.Integer(),
                                  tierExpiration=fields.String())


# --- helpers ------------------------------------------------------------------------------


def _base_url() -> str:
    return context.resources().settings.public_base_url or request.host_url.rstrip("/")


def _front_end_url(name: str, value: str | None) -> str | None:
    """redirectURL/paymentURL must lead back to one of the domain's own front-ends: an
    http(s) URL whose scheme, host and port are exactly those of a configured origin, with
    no user part and nothing that would need encoding, so it travels as one opaque value
    into any link built from it."""
    if not value:
        return None
    refused = BadRequest(f"{name} must be a URL of this site's front-end.")
    if len(value) > 2048 or not value.isascii() or _URL_FORBIDDEN.search(value):
        raise refused
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        raise refused from None
    if parts.scheme not in ("http", "https") or "@" in parts.netloc or not parts.hostname:
        raise refused
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if origin not in {o.lower() for o in context.domain().origins}:
        raise refused
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, parts.fragment))


def _checkout_factory(redirect_url: str | None, payment_page_url: str | None):
    resources = context.resources()
    domain = context.domain()
    base = _base_url()

    def make(processor_id: str, product, payer):
        token = sealing.sign(resources.secret_key, "checkout", {
            "d": domain.identifier, "p": product.price.product_id, "u": payer.user_id if payer else None,
            "r": redirect_url, "q": payment_page_url})
        reference = payer_refs.issue(resources.secret_key, processor_id, domain.identifier, payer.user_id,
                                     product.price.product_id) if payer else None
        return plans_service.make_checkout(domain, product, payer, redirect_url, payment_page_url,
                                           f"{base}/checkout/{processor_id}?t={token}",
                                           f"{base}/webhooks/{processor_id}", reference)

    return make


def _price_of(domain: str, product_id):
    product = plans_service.find_product(domain, product_id) if isinstance(product_id, str) else None
    return product.view() if product is not None else None


def _subscription_price(processor: str, subscription_id):
    from ..models.billing import Subscription

    if not isinstance(subscription_id, str) or not subscription_id:
        return None
    sub = Subscription.objects(processor=processor, vendor_id=subscription_id).only("domain", "product_id").first()
    return _price_of(sub.domain, sub.product_id) if sub is not None else None


def _processor(identifier: str):
    processor = context.resources().payment_processors.get(identifier)
    if processor is None:
        raise NotFound("Unknown payment processor.")
    return processor


# --- the contract's endpoints -------------------------------------------------------------


@blp.route("/getBillingPlans", methods=["GET"])
@blp.arguments(GetBillingPlansSchema, location="query")
@blp.response(200, envelope("BillingPlansResponse", fields.List(fields.Nested(BillingPlanSchema))))
def get_billing_plans(args):
    """The Billing Plans of this site and environment, with a payment link per provider."""
    domain = context.domain()
    user = context.current_user(required=False)
    plan_ids = [p.strip() for p in (args.get("planIDs") or "").split(",") if p.strip()]
    make = _checkout_factory(_front_end_url("redirectURL", args.get("redirectURL")),
                             _front_end_url("paymentURL", args.get("paymentURL")))
    payer = memberships_service.payer_of(user)
    processors = context.resources().payment_processors
    plans = plans_service.list_plans(domain.identifier, domain.environment, plan_ids, args.get("code"))
    return ok([plans_service.offer(plan, processors, lambda pid, product: make(pid, product, payer))
               for plan in plans])


@blp.route("/createBillingPlan", methods=["POST"])
@admin_only
@blp.arguments(CreateBillingPlanSchema)
@blp.response(200, envelope("BillingPlanResponse", fields.Nested(BillingPlanSchema)))
def create_billing_plan(body):
    """Add a Billing Plan to this site (admins)."""
    admin = context.require_admin()
    domain = context.domain()
    processors = context.resources().payment_processors
    plan = plans_service.create_plan(domain.identifier, body.get("env") or domain.environment, body, processors, admin)
    make = _checkout_factory(None, None)
    return ok(plans_service.offer(plan, processors, lambda pid, product: make(pid, product, None)))


@blp.route("/cancelMembership", methods=["DELETE"])
@blp.response(200, SuccessMessage)
def cancel_membership():
    """Stop the signed-in user's membership from renewing (or mail the instructions)."""
    user = context.current_user()
    return ok(memberships_service.cancel(context.resources(), context.domain(), user))


@blp.route("/processCardSubscription", methods=["POST"])
@blp.arguments(CardSubscriptionSchema)
@blp.response(200, SuccessMessage)
def process_card_subscription(body):
    """Pay a Billing Plan price with a credit card (card data goes to the processor only)."""
    user = context.current_user(required=False)
    result = memberships_service.card_subscription(context.resources(), context.domain(), user, body,
                                                   _checkout_factory(None, None))
    return ok(result)


@blp.route("/setAdminProvidedPremiumTier", methods=["POST"])
@admin_only
@blp.arguments(SetAdminTierSchema)
@blp.response(200, envelope("AdminPremiumTierResponse", fields.Nested(AdminTierSchema)))
def set_admin_provided_premium_tier(body):
    """Give (or take back) a free Premium Tier to one or many users (admins)."""
    admin = context.require_admin()
    return ok(memberships_service.grant(context.resources(), context.domain(), body, admin))


@blp.route("/payWithCardEmail", methods=["POST"])
@limiter.limit("10 per hour", key_func=client_key)
@blp.arguments(PayWithCardEmailSchema)
@blp.response(200, SuccessOnly)
def pay_with_card_email(body):
    """Mail the user how to pay for a membership with a credit card."""
    user = context.current_user(required=False)
    if body.get("email"):
        email = normalize_email(body["email"])
    elif user is not None:
        email = user.email
    else:
        raise BadRequest("email is required when you are not signed in.")
    settings = context.resources().settings
    enforce(context.resources().rate_limiter, settings.card_email_rate_limit_per_email, "card-email",
            f"{context.domain().identifier}:{email}",
            "Too many payment emails for this address: please wait before asking again.")
    # The same answer whether or not the address has an account (no enumeration).
    return ok({"success": memberships_service.pay_with_card_email(context.resources().settings, context.domain(), email)})


@blp.route("/injectBoostyAdminAccountCookies", methods=["POST"])
@admin_only
@blp.arguments(BoostyCookiesSchema)
@blp.response(200, SuccessOnly)
def inject_boosty_admin_account_cookies(body):
    """Store the Boosty admin account's cookies (encrypted; they expire after 7 days) (admins)."""
    admin = context.require_admin()
    resources = context.resources()
    if "boosty" not in resources.payment_processors:
        raise BadRequest("The boosty payment processor is not installed.")
    domain = context.domain()
    if body.get("domainIdentifier"):
        domain = resources.settings.domain_by_identifier(body["domainIdentifier"].strip().lower())
        if domain is None:
            raise BadRequest("domainIdentifier names no domain of this deployment.")
    memberships_service.store_credentials(resources, "boosty", domain.identifier, body["accountId"], body["cookies"],
                                          admin)
    return ok({"success": True})


@blp.route("/redeemGiftCard", methods=["POST"])
@blp.arguments(RedeemGiftCardSchema)
@blp.response(200, GiftCardRedeemed)
def redeem_gift_card(body):
    """Redeem a Gift Card: its Premium Tier for its number of days (once per card)."""
    context.require_session_header()
    user = context.current_user()
    domain = context.domain()
    # Counted before the code is looked up, so parallel guesses get no more than the limit.
    enforce(context.resources().rate_limiter, context.resources().settings.gift_card_attempts_per_user,
            "gift-card-user", user.id, "Too many gift card attempts: please wait before trying again.")
    resources = context.resources()
    result = giftcards_service.redeem(resources.pg, resources.redis, domain.identifier, user, body["code"],
                                      domain.environment)
    result["tierExpiration"] = iso(result["tierExpiration"])
    return ok(result)


@blp.route("/downloadGiftCards", methods=["GET"])
@admin_only
@blp.arguments(DownloadGiftCardsSchema, location="query")
@blp.response(200, content_type="text/plain")
def download_gift_cards(args):
    """Create Gift Cards and download their codes as a TXT file, one per line (admins)."""
    admin = context.require_admin()
    domain = context.domain()
    external = [c.strip() for c in (args.get("externalCodes") or "").split(",") if c.strip()]
    if len(external) > 10_000:
        raise BadRequest("externalCodes: at most 10,000 codes.")
    codes = giftcards_service.create_cards(
        domain.identifier, provider=args["distributionProvider"], tier=args["tier"], days=args["days"],
        count=args["numberOfCards"], usd_price=args["usdPrice"], external_codes=external,
        info=args.get("additionalInformation"), admin=admin)
    name = f"giftcards-{args['distributionProvider']}-tier{args['tier']}-{args['days']}d-{utcnow():%Y%m%d%H%M%S}.txt"
    return Response("\n".join(codes) + "\n", mimetype="text/plain",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


# --- vendor-facing routes -----------------------------------------------------------------


@blp.route("/webhooks/<processor_id>", methods=["GET", "POST"])
@blp.doc(summary="A payment processor's webhooks/postbacks (called by the vendor).")
def webhook(processor_id):
    """Receive a payment vendor's webhook: verified by the processor, stored in the ledger
    before it is acted on; a duplicate changes nothing; a bad signature is refused (400)."""
    processor = _processor(processor_id)
    resources = context.resources()
    domain = context.domain()
    body = request.get_data(cache=True)
    incoming = WebhookRequest(
        method=request.method, path=request.path, headers={k.lower(): v for k, v in request.headers.items()},
        body=body, args=request.args.to_dict(), form=request.form.to_dict() if request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data") else {},
        remote_addr=request.remote_addr or "", received_at=utcnow(), price_of=lambda product_id: _price_of(
            domain.identifier, product_id),
        subscription_price=lambda subscription_id: _subscription_price(processor_id, subscription_id),
        reference_of=lambda text: payer_refs.read(resources.secret_key, processor_id, domain.identifier, text))
    payload = body.decode("utf-8", "replace") or request.query_string.decode("utf-8", "replace")
    received = webhooks_service.receive(resources, processor, domain, incoming, payload)
    if received.response_text is not None:
        return Response(received.response_text, mimetype="text/plain")
    return ok({"received": True, "outcome": received.outcome})


@blp.route("/checkout/<processor_id>", methods=["GET"])
@blp.doc(summary="Follow a payment link: creates the vendor's checkout and redirects to it.")
def checkout(processor_id):
    """The payment link of a price for processors whose checkout is created on demand."""
    processor = _processor(processor_id)
    resources = context.resources()
    domain = context.domain()
    data = sealing.unsign(resources.secret_key, "checkout", request.args.get("t", ""), CHECKOUT_TOKEN_AGE_S)
    if data.get("d") != domain.identifier:
        raise BadRequest("This link is invalid or has expired.")
    if not data.get("u"):
        raise Forbidden("Sign in before buying a plan.")
    from ..services.users import get_user

    user = get_user(data["u"])
    if user is None or user.is_disabled:
        raise Forbidden("Sign in before buying a plan.")
    product = plans_service.find_product(domain.identifier, data["p"])
    if product is None:
        raise NotFound("This plan is no longer offered.")
    make = _checkout_factory(data.get("r"), data.get("q"))
    url = processor.start_checkout(make(processor_id, product, memberships_service.payer_of(user)))
    return redirect(url, code=302)
