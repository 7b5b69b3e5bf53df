"""The OpenAPI document, finished for its readers: the contract's endpoint names as
``operationId``, its chapters as tags, who may call each operation, and an example of
every request and answer.

One apispec plugin does it as each path is registered, so ``/openapi.json``, ``/docs``,
``aimg openapi`` and the tests all see the same document.
"""
from __future__ import annotations

import re
from typing import Any

from apispec import BasePlugin

METHODS = ("get", "post", "put", "patch", "delete")

# Blueprint name -> the contract's chapter.
CHAPTERS = {
    "auth": "External Login Providers",
    "users": "User Management",
    "billing": "Premium Membership Management",
    "images": "Image Management",
    "generation": "Image Generation",
    "private_folders": "Private Folder Management",
    "public_folders": "Public Folder Management",
    "common_folders": "Common Folder Management",
    "tags": "Tags Management",
    "technical": "Technical",
    "api2_users": "API2: User Management",
    "workflows": "API2: Workflows",
    "events": "Events (beyond the contract)",
}

# Who may call what (the contract's Headers tables; every other operation takes the session).
# Admin-only operations are the views marked with ``api.base.admin_only``, the same marker
# that makes the server refuse a non-admin.
# The session, and an admin key that widens what the caller may see or do.
SESSION_ADMIN_OPTIONAL = frozenset({
    "getUser", "deleteUser", "deleteItems", "getReportQueues", "ingestLogs", "getItemStatus", "cancelGeneration",
})
# A new session is made when none is given.
SESSION_OPTIONAL = frozenset({"createUser", "authenticateUser", "getSelfUser", "startLogin", "getBillingPlans",
                              "processCardSubscription", "payWithCardEmail"})
# Nobody needs to be identified (or the caller is a vendor or a provider's redirect).
NO_AUTH = frozenset({"getAffiliateAd", "getFile", "getModels", "getQueuesLength", "getSamplePrompts", "requestOTP",
                     "generateStrongPassword", "loginCallback", "receiveWebhook", "receiveWebhookGet", "checkout"})

SESSION = [{"session": []}]
ADMIN = [{"adminKey": []}]

SECURITY_SCHEMES = {
    "session": {"type": "apiKey", "in": "header", "name": "X-Session-ID",
                "description": "The caller's session: a UUID chosen by the front-end (createUser and "
                               "authenticateUser sign it in)."},
    "adminKey": {"type": "apiKey", "in": "header", "name": "X-Administration-Key",
                 "description": "A personal administration key of this deployment."},
}
HEADER_PARAMETERS = {
    "SessionID": {"in": "header", "name": "X-Session-ID", "required": False,
                  "schema": {"type": "string", "maxLength": 36},
                  "example": "0b6f4a9e-6a4b-4f0e-9a43-2f1f8c6d2b11",
                  "description": "The caller's session (a UUID)."},
    "AdministrationKey": {"in": "header", "name": "X-Administration-Key", "required": False,
                          "schema": {"type": "string"}, "description": "A personal administration key."},
}


def security_for(name: str, view=None) -> list[dict]:
    if getattr(view, "aimg_admin_only", False):
        return ADMIN
    if name in NO_AUTH:
        return []
    if name in SESSION_ADMIN_OPTIONAL:
        return [{"session": []}, {"session": [], "adminKey": []}]
    if name in SESSION_OPTIONAL:
        return [{"session": []}, {}]
    return SESSION


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def operation_name(path: str, method: str, view_name: str) -> str:
    """The contract's endpoint name (the path's last segment), else the view's name."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last and "{" not in path and not path.startswith(("/webhooks", "/checkout")):
        return last
    return _camel(view_name)


# Field name -> an example value a reader recognises.
EXAMPLES: dict[str, Any] = {
    "email": "user@example.com", "billingEmail": "user@example.com", "password": "Sup3r-Secret!pass",
    "otp": "123456", "username": "ada", "sessionID": "0b6f4a9e-6a4b-4f0e-9a43-2f1f8c6d2b11",
    "userID": "6650f0c2a1b2c3d4e5f60718", "itemID": "6650f0c2a1b2c3d4e5f60719", "folderID": "6650f0c2a1b2c3d4e5f6071a",
    "redirectURL": "http://localhost:3000/login", "prompt": "a lighthouse at dawn, oil painting",
    "negativePrompt": "blurry", "modelID": "f222", "key": "theme", "value": "dark", "id": "logo.png",
    "name": "Favourites", "folderName": "Favourites", "description": "My best pictures", "tag": "landscape",
    "errorMessage": "What went wrong, safe to show to a user.", "message": "Done.", "query": "SELECT 1",
    "refList": ["https://www.google.com/"], "rs": "partner-42", "customMetadata": '{"purpose": "banner"}',
    "filename": "logo.png", "merchantProcessor": "stripe", "paginationIndex": "1735689600000", "nextPaginationIndex": "1735603200000", "reason": "spam",
}


def _resolve(spec, schema: dict) -> dict:
    ref = schema.get("$ref")
    if ref:
        return spec.components.schemas.get(ref.rsplit("/", 1)[-1], {})
    return schema


def example_of(spec, schema: dict, name: str = "", depth: int = 0) -> Any:
    schema = _resolve(spec, schema or {})
    for key in ("example", "default"):
        if key in schema and schema[key] is not None and not callable(schema[key]):
            return schema[key]
    if name in EXAMPLES and schema.get("type") in (None, "string"):
        return EXAMPLES[name]
    if schema.get("enum"):
        return schema["enum"][0]
    for combined in ("allOf", "oneOf", "anyOf"):
        if schema.get(combined):
            return example_of(spec, schema[combined][0], name, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        return {field: example_of(spec, sub, field, depth + 1) for field, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [example_of(spec, schema.get("items", {}), name, depth + 1)] if depth <= 4 else []
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return name not in {"hasError", "reversePagination", "proLimitHit"}
    if schema.get("format") == "binary":
        return None
    if schema.get("format") == "date-time" or name.endswith(("Date", "Expiration")):
        return "2025-01-01T12:00:00.000Z"
    if name.endswith("ID") or name.endswith("IDs"):
        return "6650f0c2a1b2c3d4e5f60718"
    if name.lower().endswith("url"):
        return "https://example.com/"
    if schema.get("minLength") or schema.get("pattern"):
        return "1" * max(schema.get("minLength", 1), 1) if "\\d" in schema.get("pattern", "\\d") else "example"
    return "string"


def _tidy(text: str) -> str:
    """reStructuredText literals (``x``) read as Markdown code in the UI."""
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _summary_and_description(op: dict, view) -> None:
    doc = " ".join((op.get("summary") or (view.__doc__ if view is not None else "") or "").split())
    description = op.get("description")
    if not doc:
        return
    first, sep, rest = doc.partition(". ")
    op["summary"] = _tidy(first.rstrip(".") + ("." if sep or doc.endswith(".") else ""))[:200]
    more = " ".join(part for part in (rest if sep else "", description or "") if part)
    if more:
        op["description"] = _tidy(more)
    elif "description" in op:
        del op["description"]


def _object_of(parameters: list[dict]) -> dict:
    properties = {p["name"]: {**p.get("schema", {}), **({"description": p["description"]} if "description" in p else {})}
                  for p in parameters}
    schema: dict = {"type": "object", "properties": properties}
    required = [p["name"] for p in parameters if p.get("required")]
    if required:
        schema["required"] = required
    return schema


class ContractDocPlugin(BasePlugin):
    def __init__(self, app):
        self.app = app
        self.spec = None

    def init_spec(self, spec):
        self.spec = spec
        add_tag = spec.tag
        spec.tag = lambda tag: add_tag({**tag, "name": CHAPTERS.get(tag["name"], tag["name"])})
        spec.components.security_scheme("session", SECURITY_SCHEMES["session"])
        spec.components.security_scheme("adminKey", SECURITY_SCHEMES["adminKey"])
        for name, parameter in HEADER_PARAMETERS.items():
            spec.components.parameter(name, "header", parameter)

    def operation_helper(self, path=None, operations=None, rule=None, **kwargs):
        view = self.app.view_functions.get(rule.endpoint) if rule is not None else None
        view_name = rule.endpoint.rsplit(".", 1)[-1] if rule is not None else "operation"
        taken = set()
        for method in METHODS:
            op = operations.get(method)
            if op is None:
                continue
            name = operation_name(path, method, view_name)
            if name in taken:
                name += method.capitalize()
            taken.add(name)
            op["operationId"] = name
            op["tags"] = [CHAPTERS.get(tag, tag) for tag in op.get("tags", [])]
            _summary_and_description(op, view)
            self._request_body(op)
            self._security(op, name, view)
            self._examples(op)

    def _request_body(self, op: dict) -> None:
        parameters = op.get("parameters", [])
        either = [p for p in parameters if isinstance(p, dict) and p.get("in") == "json_or_form"]
        files = [p for p in parameters if isinstance(p, dict) and p.get("in") == "formData"]
        if either:
            schema = _object_of(either)
            op["requestBody"] = {"required": any(p.get("required") for p in either), "content": {
                "application/json": {"schema": schema}, "application/x-www-form-urlencoded": {"schema": schema}}}
        if files:
            schema = _object_of(files)
            form = op.get("requestBody", {}).get("content", {}).pop("application/x-www-form-urlencoded", None)
            if form:
                extra = _resolve(self.spec, form["schema"])
                schema["properties"].update(extra.get("properties", {}))
                schema["required"] = schema.get("required", []) + extra.get("required", [])
            op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
        kept = [p for p in parameters if not (isinstance(p, dict) and p.get("in") in ("json_or_form", "formData"))]
        if kept:
            op["parameters"] = kept
        else:
            op.pop("parameters", None)

    def _security(self, op: dict, name: str, view) -> None:
        security = security_for(name, view)
        op["security"] = security
        schemes = {scheme for requirement in security for scheme in requirement}
        # Typed clients learn the headers from parameters (security requirements carry no types).
        headers = ["SessionID"] if "session" in schemes else []
        if "adminKey" in schemes:
            headers.append("AdministrationKey")
        if headers:
            op["parameters"] = op.get("parameters", []) + headers

    def _examples(self, op: dict) -> None:
        for parameter in op.get("parameters", []):
            if isinstance(parameter, dict) and "name" in parameter and "example" not in parameter:
                value = example_of(self.spec, parameter.get("schema", {}), parameter["name"])
                if value is not None:
                    parameter["example"] = value
        for media in op.get("requestBody", {}).get("content", {}).values():
            if "schema" in media and "example" not in media:
                value = example_of(self.spec, media["schema"])
                media["example"] = {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value
        for status, response in op.get("responses", {}).items():
            if not isinstance(response, dict):
                continue
            media = response.get("content", {}).get("application/json")
            if media and "schema" in media and "example" not in media:
                media["example"] = example_of(self.spec, media["schema"])
