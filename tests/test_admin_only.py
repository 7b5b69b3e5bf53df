"""Every admin-only endpoint refuses a non-admin with 403 before it reads the input."""
from __future__ import annotations

import pytest

from tests.conftest import ADMIN_KEY, assert_error, new_session_headers

# The contract's endpoints that "can only be used by Admins" (X-Administration-Key mandatory).
CONTRACT_ADMIN_ONLY = {
    "/setProfilePictureBanned", "/setUserAdditionalInformation", "/setUserAbuseLevel", "/createBillingPlan",
    "/setAdminProvidedPremiumTier", "/injectBoostyAdminAccountCookies", "/downloadGiftCards", "/restoreItems",
    "/getReports", "/closeReports", "/downloadReportsForEpoch", "/getItems", "/setPublicApprovalStatus",
    "/setProtected", "/migrateLibrary", "/uploadFile", "/getFileMetadata", "/removeFile", "/pgQuery",
}

KEYS = {
    "no key": None,
    "empty key": "",
    "wrong key": "not-the-admin-key-at-all-0000000",
    "prefix of the right key": ADMIN_KEY[:-1],
    "right key plus a character": ADMIN_KEY + "x",
}
BODIES = {
    "empty body": {},
    "malformed body": {"data": b'{"queryText": ', "content_type": "application/json"},
    "wrong types": {"json": {"userID": 7, "abuse": "x", "queryText": [], "itemIDs": {"a": 1}}},
}


def _admin_routes(app):
    routes = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, "aimg_admin_only", False):
            method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
            routes.append((rule.rule, method))
    return sorted(routes)


def test_the_admin_only_endpoints_are_the_contracts(app):
    assert {path for path, _ in _admin_routes(app)} == CONTRACT_ADMIN_ONLY


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_a_non_admin_gets_403_whatever_the_input(app, client, key, body):
    for path, method in _admin_routes(app):
        headers = new_session_headers()
        if key is not None:
            headers["X-Administration-Key"] = key
        kwargs = dict(body)
        if method == "GET":
            kwargs = {"query_string": {"userID": "%%%", "limit": "-1", "id": "../x"}} if body else {}
        response = client.open(path, method=method, headers=headers, **kwargs)
        assert response.status_code == 403, (path, response.status_code, response.get_data(as_text=True)[:200])
        assert_error(response, 403, "X-Administration-Key")


def test_a_malformed_session_header_does_not_come_before_the_admin_check(app, client):
    for path, method in _admin_routes(app):
        response = client.open(path, method=method, headers={"X-Session-ID": "not-a-uuid"})
        assert_error(response, 403)
