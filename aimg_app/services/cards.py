"""Card fields, checked before any vendor sees them. Messages never repeat the values."""
from __future__ import annotations

import datetime as dt
import re

from ..errors import BadRequest
from ..plugin_api import CardDetails

# ISO 3166-1 alpha-2 (officially assigned codes).
ISO_COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO
JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR
MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO
RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV
TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())

_DIGITS = re.compile(r"^\d{12,19}$")
_CVV = re.compile(r"^\d{3,4}$")
_STATE = re.compile(r"^[A-Za-z]{2}$")
_SEPARATORS = re.compile(r"[\s-]")


def luhn_ok(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def validate_card(body: dict, email: str | None, today: dt.date | None = None) -> CardDetails:
    """A ``CardDetails`` from the request fields, or 400 naming the field (never its value)."""
    number = _SEPARATORS.sub("", body["cardNumber"])
    if not _DIGITS.match(number) or not luhn_ok(number):
        raise BadRequest("cardNumber is not a valid card number.")
    month, year = body["expirationMonth"], body["expirationYear"]
    if not 1 <= month <= 12:
        raise BadRequest("expirationMonth must be 1-12.")
    if year < 100:
        year += 2000
    today = today or dt.datetime.now(dt.UTC).date()
    if (year, month) < (today.year, today.month) or year > today.year + 25:
        raise BadRequest("The card has expired (expirationMonth/expirationYear must not be in the past).")
    cvv = body["securityCode"].strip()
    if not _CVV.match(cvv):
        raise BadRequest("securityCode must be 3 or 4 digits.")
    amex = number[:2] in ("34", "37")
    if amex != (len(cvv) == 4):
        raise BadRequest("securityCode has the wrong number of digits for this card.")
    holder = body["cardHolderName"].strip()
    if not holder:
        raise BadRequest("cardHolderName is required.")
    country = body.get("country")
    if country is not None and country.upper() not in ISO_COUNTRIES:
        raise BadRequest("country must be an ISO 3166-1 alpha-2 code (e.g. US).")
    state = body.get("stateOrProvince")
    if state is not None and not _STATE.match(state):
        raise BadRequest("stateOrProvince must be a 2-letter code.")
    return CardDetails(number=number, holder_name=holder, expiration_month=month, expiration_year=year,
                       security_code=cvv, street=body.get("street"), city=body.get("city"),
                       state_or_province=state.upper() if state else None, postal_code=body.get("postalCode"),
                       country=country.upper() if country else None, email=email,
                       phone_number=body.get("phoneNumber"))
