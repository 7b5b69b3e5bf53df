"""Fakes of payment vendors: small HTTP servers on loopback that speak each vendor's API the
way its plugin uses it, plus builders of the vendor's signed webhooks/postbacks. The real
plugin code runs against them end to end."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def form(self) -> dict:
        return dict(parse_qsl(self.body.decode()))


@dataclass
class FakeServer:
    """Routes: (METHOD, regex of the path) -> handler(Seen, match) -> (status, body[, headers])."""

    routes: list = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def route(self, method: str, pattern: str):
        def register(fn: Callable):
            self.routes.append((method, re.compile(f"^{pattern}$"), fn))
            return fn

        return register

    def start(self) -> "FakeServer":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, parts.path, dict(parse_qsl(parts.query)),
                            {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length) if length else b"")
                fake.seen.append(seen)
                for method, pattern, fn in fake.routes:
                    match = pattern.match(parts.path)
                    if method == self.command and match:
                        result = fn(seen, match)
                        break
                else:
                    result = (404, {"error": {"message": "no such route"}})
                status, body, *rest = result
                headers = rest[0] if rest else {}
                data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
                self.send_response(status)
                self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self, method: str, path_prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(path_prefix)]


# --- Stripe -------------------------------------------------------------------------------


class FakeStripe(FakeServer):
    """Checkout Sessions and Subscriptions of the Stripe API (form-encoded requests, Bearer
    secret key); webhooks signed with ``Stripe-Signature: t=...,v1=HMAC-SHA256(t.payload)``."""

    def __init__(self, api_key: str, webhook_secret: str):
        super().__init__()
        self.api_key, self.webhook_secret = api_key, webhook_secret
        self.sessions: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}

        def authorized(seen):
            return seen.headers.get("authorization") == f"Bearer {self.api_key}"

        @self.route("POST", r"/v1/checkout/sessions")
        def create_session(seen, _m):
            if not authorized(seen):
                return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
            form = seen.form
            sid = f"cs_test_{uuid.uuid4().hex[:16]}"
            session = {"id": sid, "object": "checkout.session", "url": f"https://checkout.stripe.test/c/pay/{sid}",
                       "mode": form.get("mode"), "client_reference_id": form.get("client_reference_id"),
                       "form": form}
            self.sessions[sid] = session
            return 200, session

        @self.route("POST", r"/v1/subscriptions/(?P<id>[^/]+)")
        def update_subscription(seen, m):
            if not authorized(seen):
                return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
            sub = self.subscriptions.setdefault(m["id"], {"id": m["id"], "object": "subscription"})
            if seen.form.get("cancel_at_period_end") == "true":
                sub["cancel_at_period_end"] = True
            return 200, sub

    def sign(self, payload: str, timestamp: int | None = None, secret: str | None = None) -> str:
        t = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new((secret or self.webhook_secret).encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
        return f"t={t},v1={mac}"

    @staticmethod
    def event(event_type: str, obj: dict, created: int, event_id: str | None = None) -> str:
        return json.dumps({"id": event_id or f"evt_{uuid.uuid4().hex[:16]}", "object": "event", "type": event_type,
                           "created": created, "api_version": "2024-06-20", "livemode": False,
                           "data": {"object": obj}})

    @staticmethod
    def invoice_paid(sub_id: str, user_id: str, product_id: str, period_end: int, created: int, reason: str,
                     payment_intent: str) -> dict:
        return {"id": f"in_{uuid.uuid4().hex[:12]}", "object": "invoice", "status": "paid", "subscription": sub_id,
                "billing_reason": reason, "customer": "cus_123", "payment_intent": payment_intent,
                "amount_paid": 999, "currency": "usd", "created": created,
                "subscription_details": {"metadata": {"userId": user_id, "productId": product_id}},
                "lines": {"data": [{"period": {"start": created, "end": period_end}}]}}


# --- PayPal -------------------------------------------------------------------------------


class FakePayPal(FakeServer):
    """OAuth2 client credentials, Subscriptions (create/cancel) and the webhook verification
    call of PayPal's REST API. A delivery verifies when its transmission signature is the one
    this fake issued for that body (``sign``)."""

    def __init__(self, client_id: str, client_secret: str, webhook_id: str):
        super().__init__()
        self.client_id, self.client_secret, self.webhook_id = client_id, client_secret, webhook_id
        self.token = f"A21AA{uuid.uuid4().hex}"
        self.issued: dict[str, str] = {}  # transmission id -> signature
        self.subscriptions: dict[str, dict] = {}

        def authorized(seen):
            return seen.headers.get("authorization") == f"Bearer {self.token}"

        @self.route("POST", r"/v1/oauth2/token")
        def token(seen, _m):
            expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if seen.headers.get("authorization") != expected or seen.form.get("grant_type") != "client_credentials":
                return 401, {"error": "invalid_client"}
            return 200, {"access_token": self.token, "token_type": "Bearer", "expires_in": 32400}

        @self.route("POST", r"/v1/billing/subscriptions")
        def create(seen, _m):
            if not authorized(seen):
                return 401, {"name": "AUTHENTICATION_FAILURE"}
            body = seen.json
            sid = f"I-{uuid.uuid4().hex[:12].upper()}"
            self.subscriptions[sid] = {"id": sid, "status": "APPROVAL_PENDING", **body}
            return 201, {"id": sid, "status": "APPROVAL_PENDING", "links": [
                {"href": f"https://www.paypal.test/webapps/billing/subscriptions?ba_token=BA-{sid}", "rel": "approve",
                 "method": "GET"}]}

        @self.route("GET", r"/v1/billing/subscriptions/(?P<id>[^/]+)")
        def get(seen, m):
            if not authorized(seen) or m["id"] not in self.subscriptions:
                return 404, {"name": "RESOURCE_NOT_FOUND"}
            return 200, self.subscriptions[m["id"]]

        @self.route("POST", r"/v1/billing/subscriptions/(?P<id>[^/]+)/cancel")
        def cancel(seen, m):
            if not authorized(seen) or m["id"] not in self.subscriptions:
                return 404, {"name": "RESOURCE_NOT_FOUND"}
            self.subscriptions[m["id"]]["status"] = "CANCELLED"
            return 204, b""

        @self.route("POST", r"/v1/notifications/verify-webhook-signature")
        def verify(seen, _m):
            if not authorized(seen):
                return 401, {"name": "AUTHENTICATION_FAILURE"}
            body = seen.json
            event = json.dumps(body["webhook_event"], sort_keys=True)
            ok = (body.get("webhook_id") == self.webhook_id and body.get("auth_algo") == "SHA256withRSA"
                  and self.issued.get(body.get("transmission_id")) == body.get("transmission_sig")
                  and self.issued.get(body["transmission_id"] + ":body") == event)
            return 200, {"verification_status": "SUCCESS" if ok else "FAILURE"}

    def sign(self, event_json: str, sent_at: float | None = None) -> dict:
        transmission = str(uuid.uuid4())
        signature = base64.b64encode(hashlib.sha256(f"{transmission}{event_json}".encode()).digest()).decode()
        self.issued[transmission] = signature
        self.issued[transmission + ":body"] = json.dumps(json.loads(event_json), sort_keys=True)
        sent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if sent_at is None else sent_at))
        return {"PAYPAL-TRANSMISSION-ID": transmission, "PAYPAL-TRANSMISSION-TIME": sent,
                "PAYPAL-TRANSMISSION-SIG": signature, "PAYPAL-AUTH-ALGO": "SHA256withRSA",
                "PAYPAL-CERT-URL": "https://api.paypal.com/v1/notifications/certs/CERT-360caa42",
                "Content-Type": "application/json"}

    @staticmethod
    def event(event_type: str, resource: dict, create_time: str, event_id: str | None = None) -> str:
        return json.dumps({"id": event_id or f"WH-{uuid.uuid4().hex[:16].upper()}", "event_version": "1.0",
                           "create_time": create_time, "resource_type": "subscription", "event_type": event_type,
                           "resource": resource})


# --- Helio --------------------------------------------------------------------------------


class FakeHelio(FakeServer):
    """Helio's charge API (``POST /v1/charge/api-key?apiKey=``, ``Authorization: Bearer
    <secret>``): a single-use checkout page of a Pay Link, carrying ``additionalJSON``."""

    def __init__(self, api_key: str, api_secret: str):
        super().__init__()
        self.api_key, self.api_secret = api_key, api_secret
        self.charges: dict[str, dict] = {}  # charge token -> the request body

        @self.route("POST", r"/v1/charge/api-key")
        def charge(seen, _m):
            if seen.query.get("apiKey") != self.api_key or seen.headers.get("authorization") != f"Bearer {self.api_secret}":
                return 401, {"message": "unauthorized"}
            token = str(uuid.uuid4())
            self.charges[token] = seen.json
            return 201, {"id": uuid.uuid4().hex[:24], "pageUrl": f"https://app.hel.io/charge/{token}"}


# --- Patreon ------------------------------------------------------------------------------


def patreon_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.md5).hexdigest()


def patreon_member(member_id: str, patreon_user_id: str, email: str, status: str, tier_id: str | None,
                   next_charge: str | None, last_charge: str | None, last_status: str = "Paid",
                   email_verified: bool | None = True) -> str:
    tiers = [{"id": tier_id, "type": "tier"}] if tier_id else []
    user = {"id": patreon_user_id, "type": "user", "attributes": {"email": email}}
    if email_verified is not None:
        user["attributes"]["is_email_verified"] = email_verified
    return json.dumps({
        "data": {"id": member_id, "type": "member", "attributes": {
            "email": email, "patron_status": status, "next_charge_date": next_charge, "last_charge_date": last_charge,
            "last_charge_status": last_status, "currently_entitled_amount_cents": 500 if tier_id else 0},
            "relationships": {"user": {"data": {"id": patreon_user_id, "type": "user"}},
                              "currently_entitled_tiers": {"data": tiers}}},
        "included": [user]})


# --- ArkPay -------------------------------------------------------------------------------


class FakeArkPay(FakeServer):
    """ArkPay's Merchant API: signed requests; cards ending in 0002 are declined."""

    def __init__(self, api_key: str, secret_key: str):
        super().__init__()
        self.api_key, self.secret_key = api_key, secret_key
        self.transactions: dict[str, dict] = {}

        def signed(seen):
            expected = hmac.new(self.secret_key.encode(), f"{seen.method} {seen.path}\n".encode() + seen.body,
                                hashlib.sha256).hexdigest()
            return seen.headers.get("x-api-key") == self.api_key and hmac.compare_digest(
                seen.headers.get("signature", ""), expected)

        @self.route("POST", r"/api/v1/merchant/api/transactions")
        def create(seen, _m):
            if not signed(seen):
                return 401, {"message": "Unauthorized"}
            tid = str(uuid.uuid4())
            self.transactions[tid] = {"id": tid, "status": "NEW", **seen.json}
            return 201, {"transaction": self.transactions[tid]}

        @self.route("POST", r"/api/v1/merchant/api/transactions/(?P<id>[^/]+)/pay")
        def pay(seen, m):
            if not signed(seen) or m["id"] not in self.transactions:
                return 401, {"message": "Unauthorized"}
            card = seen.json
            status = "DECLINED" if card["cardNumber"].endswith("0002") else "COMPLETED"
            self.transactions[m["id"]]["status"] = status
            return 200, {"transaction": {"id": m["id"], "status": status}}

    def webhook(self, transaction_id: str, status: str, created_at: str) -> tuple[str, dict]:
        body = json.dumps({"transaction": {"id": transaction_id, "status": status}, "createdAt": created_at})
        signature = hmac.new(self.secret_key.encode(), body.encode(), hashlib.sha256).hexdigest()
        return body, {"Signature": signature, "Content-Type": "application/json"}


# --- NMI ----------------------------------------------------------------------------------


class FakeNmi(FakeServer):
    """NMI's Direct Post API (form in, query string out) for subscriptions."""

    def __init__(self, security_key: str, signing_key: str):
        super().__init__()
        self.security_key, self.signing_key = security_key, signing_key
        self.subscriptions: dict[str, dict] = {}

        @self.route("POST", r"/api/transact.php")
        def transact(seen, _m):
            form = seen.form
            if form.get("security_key") != self.security_key:
                return 200, "response=3&responsetext=Authentication Failed", {"Content-Type": "text/plain"}
            if form.get("recurring") == "add_subscription":
                if form["ccnumber"].endswith("0002"):
                    return 200, "response=2&responsetext=DECLINE", {"Content-Type": "text/plain"}
                sid = str(uuid.uuid4().int)[:10]
                self.subscriptions[sid] = {"plan_id": form["plan_id"], "status": "active"}
                return 200, urlencode({"response": 1, "responsetext": "SUCCESS", "subscription_id": sid,
                                       "transactionid": "t" + sid}), {"Content-Type": "text/plain"}
            if form.get("recurring") == "delete_subscription":
                self.subscriptions[form["subscription_id"]]["status"] = "deleted"
                return 200, "response=1&responsetext=Subscription Deleted", {"Content-Type": "text/plain"}
            return 200, "response=3&responsetext=Invalid", {"Content-Type": "text/plain"}

    def webhook(self, event_type: str, body: dict, event_id: str | None = None, key: str | None = None):
        payload = json.dumps({"event_id": event_id or str(uuid.uuid4()), "event_type": event_type, "event_body": body})
        signature = self.webhook_signature(payload, uuid.uuid4().hex[:16], key)
        return payload, {"Webhook-Signature": signature, "Content-Type": "application/json"}

    def webhook_signature(self, payload: str, nonce: str, key: str | None = None) -> str:
        mac = hmac.new((key or self.signing_key).encode(), f"{nonce}.{payload}".encode(), hashlib.sha256).hexdigest()
        return f"t={nonce},s={mac}"


# --- CCBill -------------------------------------------------------------------------------


class FakeCCBill(FakeServer):
    """CCBill's DataLink subscription management (``viewSubscriptionStatus``, CSV answer)."""

    FIELDS = ("cancelDate", "chargebacksIssued", "expirationDate", "numberOfRebills", "recurringSubscription",
              "refundsIssued", "signupDate", "subscriptionStatus", "timesRebilled", "voidsIssued")

    def __init__(self, accnum: str, username: str, password: str):
        super().__init__()
        self.accnum, self.username, self.password = accnum, username, password
        self.statuses: dict[str, str] = {}  # subscription id -> "0" inactive, "1" cancelled, "2" active
        self.records: dict[str, dict] = {}  # subscription id -> fields that differ from a clean record

        @self.route("GET", r"/utils/subscriptionManagement.cgi")
        def manage(seen, _m):
            q = seen.query
            if (q.get("clientAccnum"), q.get("username"), q.get("password")) != (self.accnum, self.username,
                                                                                 self.password):
                return 200, '"results"\n"-1"\n', {"Content-Type": "text/plain"}
            if q.get("action") != "viewSubscriptionStatus" or q.get("subscriptionId") not in self.statuses:
                return 200, '"results"\n"0"\n', {"Content-Type": "text/plain"}
            record = dict(zip(self.FIELDS, ("", "0", "", "99", "1", "0", "20260101120000",
                                            self.statuses[q["subscriptionId"]], "0", "0")))
            record.update(self.records.get(q["subscriptionId"], {}))
            values = [record[name] for name in self.FIELDS]
            rows = "\n".join(",".join(f'"{v}"' for v in items) for items in (self.FIELDS, values))
            return 200, rows + "\n", {"Content-Type": "text/plain"}


# --- G2A PAY ------------------------------------------------------------------------------


class FakeG2A(FakeServer):
    """G2A PAY's createQuote (the quote hash is checked), its REST transaction lookup
    (``Authorization: api_hash; SHA-256(api_hash + merchant_email + secret)``) and IPN builders."""

    def __init__(self, api_hash: str, secret: str, merchant_email: str = "merchant@example.com"):
        super().__init__()
        self.api_hash, self.secret, self.merchant_email = api_hash, secret, merchant_email
        self.quotes: dict[str, dict] = {}
        self.transactions: dict[str, dict] = {}

        @self.route("POST", r"/index/createQuote")
        def quote(seen, _m):
            form = seen.form
            expected = hashlib.sha256((form["order_id"] + form["amount"] + form["currency"] + self.secret).encode()).hexdigest()
            if form.get("api_hash") != self.api_hash or form.get("hash") != expected:
                return 200, {"status": "error", "message": "Invalid hash"}
            token = uuid.uuid4().hex
            self.quotes[token] = form
            return 200, {"status": "ok", "token": token}

        @self.route("GET", r"/rest/transactions/(?P<id>[^/]+)")
        def transaction(seen, m):
            token = hashlib.sha256((self.api_hash + self.merchant_email + self.secret).encode()).hexdigest()
            if seen.headers.get("authorization") != f"{self.api_hash}; {token}":
                return 401, {"status": "ERROR", "message": "Authorization failed"}
            if m["id"] not in self.transactions:
                return 404, {"status": "ERROR", "message": "Transaction not found"}
            return 200, self.transactions[m["id"]]

    def ipn(self, order_id: str, amount: str, status: str, completed: str, secret: str | None = None,
            record: bool = True) -> dict:
        """A signed IPN; ``record`` makes G2A PAY's own record of the transaction say the same."""
        transaction = str(uuid.uuid5(uuid.NAMESPACE_URL, order_id))
        digest = hashlib.sha256(f"{transaction}{order_id}{amount}{secret or self.secret}".encode()).hexdigest()
        if record:
            self.transactions[transaction] = {"transactionId": transaction, "userOrderId": order_id,
                                              "amount": float(amount), "currency": "USD", "status": status}
        return {"type": "payment", "transactionId": transaction, "userOrderId": order_id, "amount": amount,
                "currency": "USD", "status": status, "orderCreatedAt": completed, "orderCompleteAt": completed,
                "refundedAmount": "0", "provisionAmount": "0", "hash": digest}


# --- Boosty -------------------------------------------------------------------------------


class FakeBoosty(FakeServer):
    """Boosty's blog subscriber list, readable with the admin account's bearer token."""

    def __init__(self, blog: str, token: str):
        super().__init__()
        self.blog, self.token = blog, token
        self.subscribers: list[dict] = []

        @self.route("GET", r"/v1/blog/(?P<blog>[^/]+)/subscribers")
        def subscribers(seen, m):
            if seen.headers.get("authorization") != f"Bearer {self.token}" or m["blog"] != self.blog:
                return 401, {"error": "unauthorized"}
            offset, limit = int(seen.query.get("offset", 0)), int(seen.query.get("limit", 20))
            page = self.subscribers[offset:offset + limit]
            return 200, {"data": page, "extra": {"isLast": offset + limit >= len(self.subscribers), "offset": offset}}

    def cookies(self) -> list[dict]:
        auth = json.dumps({"accessToken": self.token, "refreshToken": "r", "expiresAt": int(time.time()) + 86400})
        from urllib.parse import quote

        return [{"domain": ".boosty.to", "name": "auth", "value": quote(auth), "path": "/"},
                {"domain": ".boosty.to", "name": "_clientId", "value": "abc", "path": "/"}]
