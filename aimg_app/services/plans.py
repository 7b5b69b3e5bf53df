"""Billing plans: creation, listing with payment links, and product lookup."""
from __future__ import annotations

import hmac
import logging
import re
import uuid
from dataclasses import dataclass

from ..config import Domain
from ..errors import BadRequest, Conflict
from ..models.billing import BillingPlan, PlanPaymentProvider, PlanPrice
from ..plugin_api import Checkout, Payer
from ..plugin_api import PlanPrice as PlanPriceView

log = logging.getLogger("aimg.billing")

PRODUCT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


@dataclass(frozen=True)
class Product:
    plan: BillingPlan
    price: PlanPrice

    def view(self) -> PlanPriceView:
        p = self.price
        return PlanPriceView(product_id=p.product_id, plan_id=self.plan.id, plan_name=self.plan.name, tier=self.plan.tier,
                             type=p.type, period=p.period, currency=p.currency, currency_type=p.currency_type,
                             value=p.value, trial_days=p.trial_days, name=p.name, code_only=bool(self.plan.code))

    def price_info(self) -> dict:
        p = self.price
        return {"type": p.type, "period": p.period, "currency": p.currency, "currencyType": p.currency_type, "value": p.value}


def create_plan(domain: str, env: str, body: dict, processors: dict, admin: str) -> BillingPlan:
    """A new plan; every price names loaded payment processors and gets a unique product id."""
    plan_id = str(uuid.uuid4())
    prices = []
    seen: set[str] = set()
    for index, raw in enumerate(body["prices"]):
        product_id = raw.get("productID") or f"{plan_id[:8]}-{index + 1}"
        if not PRODUCT_ID.match(product_id):
            raise BadRequest(f"prices.{index}.productID must be 1-128 letters, digits, '.', '_', ':' or '-'.")
        if product_id in seen or find_product(domain, product_id) is not None:
            raise Conflict(f"The product id '{product_id}' is already used by a plan of this domain.")
        seen.add(product_id)
        providers = []
        for pindex, provider in enumerate(raw["paymentProviders"]):
            name = provider["paymentProvider"]
            if name not in processors:
                raise BadRequest(f"prices.{index}.paymentProviders.{pindex}.paymentProvider: no payment processor "
                                 f"'{name}' is installed.")
            providers.append(PlanPaymentProvider(payment_provider=name,
                                                 payment_label=provider.get("paymentLabel") or processors[name].label,
                                                 payment_url=provider.get("paymentUrl") or None))
        prices.append(PlanPrice(product_id=product_id, name=raw.get("name"), type=raw["type"], period=raw["period"],
                                currency=raw["currency"], currency_type=raw["currencyType"], value=raw["value"],
                                trial_days=raw.get("trialDays"), payment_providers=providers))
    plan = BillingPlan(id=plan_id, domain=domain, env=env, name=body["name"], description=body.get("description"),
                       features=body.get("features") or [], main_benefits=body.get("mainBenefits") or [],
                       prices=prices, tier=body["tier"], code=body.get("code") or None, created_by=admin)
    plan.save(force_insert=True)
    return plan


def find_product(domain: str, product_id: str | None) -> Product | None:
    if not product_id:
        return None
    for plan in BillingPlan.objects(domain=domain, prices__product_id=product_id):
        for price in plan.prices:
            if price.product_id == product_id:
                return Product(plan, price)
    return None


def list_plans(domain: str, env: str, plan_ids: list[str] | None, code: str | None) -> list[BillingPlan]:
    """The domain's plans of ``env``, oldest first; special plans only for their code."""
    query = BillingPlan.objects(domain=domain, env=env)
    if plan_ids:
        query = query.filter(id__in=plan_ids)
    return [plan for plan in query.order_by("created_date") if offered(plan, code)]


def offered(plan: BillingPlan, code: str | None) -> bool:
    """Whether ``plan`` is offered to a caller giving ``code``: a special plan only with its own."""
    return not plan.code or bool(code and hmac.compare_digest(plan.code.encode(), code.encode()))


def offered_product(domain: Domain, product_id: str | None, code: str | None) -> Product | None:
    """The price ``product_id`` if a caller giving ``code`` could see it in ``getBillingPlans``
    (same site and environment; a special plan only with its code), else None. Every path
    that buys a product the caller names goes through this, so knowing a product id of a
    special plan is not enough to buy it."""
    product = find_product(domain.identifier, product_id)
    if product is None or product.plan.env != domain.environment or not offered(product.plan, code):
        return None
    return product


@dataclass(frozen=True)
class PaymentLink:
    payment_provider: str
    payment_label: str | None
    payment_url: str


@dataclass(frozen=True)
class OfferedPrice:
    price: PlanPrice
    payment_links: list[PaymentLink]


@dataclass(frozen=True)
class OfferedPlan:
    """A plan as offered to one caller, with the payment links built for them: what the
    BillingPlan schema writes."""

    plan: BillingPlan
    prices: list[OfferedPrice]


def offer(plan: BillingPlan, processors: dict, make_checkout) -> OfferedPlan:
    """``plan`` with a payment link per provider; ``make_checkout(processor_id, product)``
    builds a ``Checkout``. A provider with no link (processor missing or not configured) is
    left out: it is not purchasable here."""
    prices = []
    for price in plan.prices:
        links = []
        for provider in price.payment_providers:
            processor = processors.get(provider.payment_provider)
            url = provider.payment_url
            if processor is not None and not url:
                url = _payment_url(processor, make_checkout(provider.payment_provider, Product(plan, price)))
            if url:
                links.append(PaymentLink(provider.payment_provider,
                                         provider.payment_label or (processor.label if processor else None), url))
        prices.append(OfferedPrice(price, links))
    return OfferedPlan(plan, prices)


def _payment_url(processor, checkout: Checkout) -> str | None:
    """The processor's link, or None when it fails: one broken processor costs its own link,
    never the page."""
    try:
        url = processor.payment_url(checkout)
    except Exception:
        log.exception("payment processor failed to build a payment link",
                      extra={"processor": processor.identifier, "product": checkout.price.product_id})
        return None
    return url if isinstance(url, str) and url else None


def make_checkout(domain: Domain, product: Product, payer: Payer | None, redirect_url: str | None,
                  payment_page_url: str | None, checkout_url: str, webhook_url: str,
                  reference: str | None = None) -> Checkout:
    return Checkout(price=product.view(), domain=domain, payer=payer, redirect_url=redirect_url,
                    payment_page_url=payment_page_url, checkout_url=checkout_url, webhook_url=webhook_url,
                    reference=reference)
