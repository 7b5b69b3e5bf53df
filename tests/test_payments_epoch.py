"""epoch: join links and postbacks authenticated by epoch_digest (HMAC-MD5 of the sorted
parameters); the answer is the plain text OK. A join link is never signed with that key,
so no link a buyer obtains can be re-split into a signed postback."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import create_plan, ledger_rows, self_user

KEY = "epoch-hmac-key"


@pytest.fixture(scope="module")
def app(make_app):
    return make_app(plugin_settings={"epoch": {"hmac_key": KEY, "co_code": "abc",
                                               "pi_codes": {"ep-1": "PI123", "ep-gold": "PI999", "ep-vip": "PI-VIP"}}})


@pytest.fixture(scope="module", autouse=True)
def plans(app):
    client = app.test_client()
    create_plan(client, tier=1, providers=("epoch",), product_id="ep-1")
    create_plan(client, tier=3, providers=("epoch",), product_id="ep-gold", value=49.99)


def digest(params, key=KEY):
    text = "".join(f"{k}{params[k]}" for k in sorted(params))
    return hmac.new(key.encode(), text.encode(), hashlib.md5).hexdigest()


def postback(client, params, key=KEY, method="get"):
    signed = {**params, "epoch_digest": digest(params, key)}
    if method == "get":
        return client.get(f"/webhooks/epoch?{urlencode(signed)}")
    return client.post("/webhooks/epoch", data=signed)


def stamp(days=0.0):
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def join_link(client, user, product="ep-1", redirect=None) -> dict:
    query = f"?redirectURL={quote(redirect, safe='')}" if redirect else ""
    plans = assert_ok(client.get(f"/getBillingPlans{query}", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == product][0]["prices"][0]["paymentProviders"]
    return {k: v[0] for k, v in parse_qs(urlsplit(link["paymentUrl"]).query).items()}


def resplit(signed: dict, needle: str = "member_id") -> dict:
    """Re-split the name+value text a link's digest covers so that it holds a ``needle``
    field: the fields sorting before the needle keep their names (the last one swallows the
    text up to it), the needle's value runs up to the trailing fields sorting after it."""
    pieces = sorted(signed.items())
    text = "".join(n + v for n, v in pieces)
    at = text.index(needle)
    head, pos = [], 0
    for name, value in pieces:
        if name > needle:
            break
        head.append([name, value])
        pos += len(name) + len(value)
    head[-1][1] = text[pos - len(head[-1][1]):at]
    rest, tail, suffix = text[at + len(needle):], {}, ""
    for name, value in reversed(pieces):
        if name > needle and rest.endswith(name + value + suffix) and len(rest) > len(name + value + suffix):
            tail[name], suffix = value, name + value + suffix
        else:
            break
    forged = {**dict(head), needle: rest[:len(rest) - len(suffix)], **tail}
    assert "".join(n + v for n, v in sorted(forged.items())) == text
    return forged


def test_join_initial_rebill_cancel_chargeback(client):
    user = sign_up(client)
    query = join_link(client, user)
    assert query["pi_code"] == "PI123" and query["x_userid"] == user["user_id"]
    assert "epoch_digest" not in query, "a join link never carries a digest made with the postback key"

    initial = {"ans": "YGOODTEST", "trans_type": "I", "member_id": "m77", "transaction_id": "tx1",
               "x_userid": user["user_id"], "pi_code": "PI123", "email": user["email"], "trans_datetime": stamp(-0.01),
               "next_rebill": (dt.date.today() + dt.timedelta(days=30)).isoformat()}
    response = postback(client, initial)
    assert response.status_code == 200 and response.get_data(as_text=True) == "OK"
    assert self_user(client, user)["tier"] == 1
    rebill = {"ans": "Y", "trans_type": "R", "member_id": "m77", "transaction_id": "tx2", "trans_datetime": stamp(-0.005),
              "next_rebill": (dt.date.today() + dt.timedelta(days=60)).isoformat()}
    assert postback(client, rebill, method="post").status_code == 200
    assert self_user(client, user)["tierExpiration"][:10] == (dt.date.today() + dt.timedelta(days=60)).isoformat()
    assert postback(client, {"trans_type": "C", "member_id": "m77", "transaction_id": "tx3",
                             "trans_datetime": stamp(-0.004)}).status_code == 200
    assert "nextBillingDate" not in self_user(client, user)["subscriptions"][0]
    assert postback(client, {"trans_type": "CB", "member_id": "m77", "transaction_id": "tx4",
                             "trans_datetime": stamp(-0.003)}).status_code == 200
    assert self_user(client, user)["tier"] == 0


@pytest.mark.parametrize("route", ["email", "redirectURL"])
def test_a_buyer_cannot_resplit_a_join_link_into_an_approved_sale(client, route):
    """The attack: put ``member_id`` into a field of a link we sign (the buyer's email, or the
    redirectURL), re-split the signed text so it reads as a postback with a ``member_id`` and
    no ``trans_type``/``ans``, and post it with the link's digest."""
    if route == "email":
        user = sign_up(client, email=f"atk{uuid.uuid4().hex[:6]}.member_id@example.com")
        query = join_link(client, user)
    else:
        user = sign_up(client)
        query = join_link(client, user, redirect="http://localhost:3000/member_id42")
    signature = query.pop("epoch_digest", "")
    forged = {**resplit(query), "epoch_digest": signature}
    assert "trans_type" not in forged and "ans" not in forged
    assert_error(client.get(f"/webhooks/epoch?{urlencode(forged)}"), 400)
    assert_error(client.post("/webhooks/epoch", data=forged), 400)
    me = self_user(client, user)
    assert me["tier"] == 0 and "tierExpiration" not in me


def test_signed_postbacks_missing_their_meaning_are_refused(app, client):
    user = sign_up(client)
    base = {"member_id": f"m-{user['user_id'][:6]}", "transaction_id": f"t-{user['user_id'][:6]}",
            "x_userid": user["user_id"], "pi_code": "PI123"}
    before = len([r for r in ledger_rows(app, "epoch") if r["status"] == "rejected"])
    assert_error(postback(client, base), 400, "malformed")  # no trans_type: not an initial sale
    assert_error(postback(client, {**base, "trans_type": "I"}), 400, "malformed")  # no ans: not approved
    assert_error(postback(client, {**base, "trans_type": "Z", "ans": "Y"}), 400)  # unknown type
    assert_error(postback(client, {**base, "trans_type": "I", "ans": "maybe"}), 400)
    assert_error(postback(client, {**base, "trans_type": "I", "ans": "Y", "pi_code": "PI-UNKNOWN"}), 400)
    assert_error(postback(client, {k: v for k, v in {**base, "trans_type": "I", "ans": "Y"}.items()
                                   if k != "member_id"}), 400)
    assert_error(postback(client, {**base, "trans_type": "R", "ans": "Y"}), 400)  # a rebill says until when
    rows = [r for r in ledger_rows(app, "epoch") if r["status"] == "rejected"]
    assert len(rows) == before + 7 and all("malformed" in r["detail"] for r in rows[before:])
    declined = postback(client, {**base, "trans_type": "I", "ans": "NDECLINED"})
    assert declined.status_code == 200
    assert self_user(client, user)["tier"] == 0


def test_the_product_is_the_one_epoch_charged_for(client):
    """The join link is not signed, so a buyer may edit it; what Epoch charged is its pi_code."""
    user = sign_up(client)
    sale = {"ans": "Y", "trans_type": "I", "member_id": f"m-{user['user_id'][:8]}", "transaction_id": uuid.uuid4().hex,
            "x_userid": user["user_id"], "x_productid": "ep-gold", "pi_code": "PI123"}
    assert postback(client, sale).status_code == 200
    me = self_user(client, user)
    assert me["tier"] == 1 and me["tierExpiration"], "the monthly product's period, not a lifetime tier"


def test_a_bad_digest_is_refused(client):
    user = sign_up(client)
    params = {"ans": "Y", "trans_type": "I", "member_id": "m9", "transaction_id": "tx9", "x_userid": user["user_id"],
              "pi_code": "PI123"}
    assert_error(postback(client, params, key="wrong"), 400)
    assert_error(client.get(f"/webhooks/epoch?{urlencode(params)}"), 400)
    assert_error(client.get(f"/webhooks/epoch?{urlencode({**params, 'epoch_digest': 'x' * 32})}"), 400)
    assert self_user(client, user)["tier"] == 0


def test_a_postback_recut_around_a_free_text_field_is_refused(client):
    """A buyer who saw the signed postback of a basic sale re-cuts it: a field of their own
    making, or free text holding a field's name, is refused, and the tier stays."""
    user = sign_up(client)
    base = {"ans": "Y", "trans_type": "I", "member_id": f"m-{user['user_id'][:8]}", "transaction_id": uuid.uuid4().hex,
            "x_userid": user["user_id"], "pi_code": "PI123"}
    assert_error(postback(client, {**base, "q": "anything"}), 400)  # a field Epoch never sends
    assert_error(postback(client, {**base, "name": "Eve pi_codePI999"}), 400)  # text holding a field's name
    assert_error(postback(client, {**base, "email": "eve@evil_example.com"}), 400)  # not an email
    assert self_user(client, user)["tier"] == 0


def test_a_chargeback_before_its_purchase_is_retried_not_lost(client):
    """The attack: get the chargeback delivered before the sale so it is ignored, and keep the tier."""
    user = sign_up(client)
    member = f"m-{uuid.uuid4().hex[:8]}"
    for kind, tx in (("CB", "early-cb"), ("CR", "early-cr")):
        early = {"trans_type": kind, "member_id": member, "transaction_id": f"{tx}-{member}",
                 "trans_datetime": stamp(-0.001)}
        assert postback(client, early).status_code == 503  # Epoch delivers it again
    initial = {"ans": "Y", "trans_type": "I", "member_id": member, "transaction_id": f"sale-{member}",
               "x_userid": user["user_id"], "pi_code": "PI123", "trans_datetime": stamp(-0.01),
               "next_rebill": (dt.date.today() + dt.timedelta(days=30)).isoformat()}
    assert postback(client, initial).status_code == 200
    assert self_user(client, user)["tier"] == 1
    assert postback(client, early).status_code == 200  # the redelivery applies
    assert self_user(client, user)["tier"] == 0


def test_a_code_only_plan_cannot_be_bought_through_a_join_link_built_by_hand(app, client):
    """The attack: knowing a special plan's pi_code, build the Epoch join link yourself (or
    take the reference of a public plan's link) and pay: Epoch charges the special price and
    posts a signed sale. Only a link we issued for that buyer and product (our x_ref) grants."""
    create_plan(client, tier=4, providers=("epoch",), product_id="ep-vip", code="VIP-ONLY")
    buyer = sign_up(client)
    public_ref = join_link(client, buyer)["x_ref"]
    before = len([r for r in ledger_rows(app, "epoch") if r["status"] == "review"])
    for ref in (None, public_ref, "forged-reference"):
        sale = {"ans": "Y", "trans_type": "I", "member_id": f"m-{uuid.uuid4().hex[:8]}",
                "transaction_id": uuid.uuid4().hex, "x_userid": buyer["user_id"], "pi_code": "PI-VIP"}
        if ref:
            sale["x_ref"] = ref
        assert postback(client, sale).status_code == 200
    assert self_user(client, buyer)["tier"] == 0
    assert len([r for r in ledger_rows(app, "epoch") if r["status"] == "review"]) == before + 3

    issued = assert_ok(client.get("/getBillingPlans?code=VIP-ONLY", headers=buyer["headers"]))["payload"]
    [link] = [p for p in issued if p["prices"][0]["productID"] == "ep-vip"][0]["prices"][0]["paymentProviders"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(link["paymentUrl"]).query).items()}
    sale = {"ans": "Y", "trans_type": "I", "member_id": f"m-{uuid.uuid4().hex[:8]}", "transaction_id": uuid.uuid4().hex,
            "x_userid": query["x_userid"], "x_ref": query["x_ref"], "pi_code": query["pi_code"]}
    assert postback(client, sale).status_code == 200
    assert self_user(client, buyer)["tier"] == 4
