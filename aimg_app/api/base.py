"""flask-smorest, bent to the contract: 400 for validation errors, the envelope everywhere."""
from __future__ import annotations

import functools

import flask_smorest
from marshmallow import EXCLUDE, RAISE, Schema, fields, post_dump, validate
from webargs.flaskparser import FlaskParser, is_json_request

from ..envelope import render_http_exception
from ..errors import BadRequest, UnsupportedMediaType
from ..pagination import DEFAULT_LIMIT, MAX_LIMIT


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400
    # Query strings often carry cache-busters; unknown JSON fields are more likely typos.
    DEFAULT_UNKNOWN_BY_LOCATION = {"query": EXCLUDE, "querystring": EXCLUDE, "headers": EXCLUDE,
                                   "cookies": EXCLUDE, "form": EXCLUDE, "files": EXCLUDE, "json": RAISE}

    def _raw_load_json(self, req):
        # A form or text body would otherwise read as "Missing data for required field".
        if not is_json_request(req) and (req.content_length or req.mimetype):
            raise UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.")
        try:
            data = super()._raw_load_json(req)
            _refuse_lone_surrogates(data)
        except RecursionError:
            raise BadRequest("The JSON body is nested too deeply.") from None
        except ValueError:  # not a decoding error (webargs answers those): an integer of over 4300 digits
            raise BadRequest("The JSON body holds a number too long to read.") from None
        return data


def _refuse_lone_surrogates(value) -> None:
    """JSON's ``\\uD800`` escapes can spell a lone UTF-16 surrogate, which is no character:
    no database, file or mail can store it. Refused here, once, for every JSON body."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("The JSON body holds a lone UTF-16 surrogate escape (\\uD800-\\uDFFF), "
                             "which is not a character.") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_lone_surrogates(key)
            _refuse_lone_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_lone_surrogates(item)


def admin_only(view):
    """Mark a view as admins-only: the X-Administration-Key is checked (403) before its
    body, query or session are looked at, so a refusal says nothing about the input."""
    view.aimg_admin_only = True
    return view


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()


class ErrorEnvelopeSchema(Schema):
    hasError = fields.Boolean(required=True, metadata={"example": True})
    errorMessage = fields.String(required=True, metadata={"description": "What went wrong, safe to show to a user."})
    errorCode = fields.Integer(metadata={"description": "The HTTP status, or a more specific code."})
    payload = fields.Raw(allow_none=True, metadata={"description": "Always null on errors."})


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorEnvelopeSchema

    def handle_http_exception(self, error):
        return render_http_exception(error)

    def _register_pagination_header(self):
        # Our lists paginate in the body (the contract's PaginationMetadata), never in a
        # header; flask-smorest's header schema would also take that component name.
        pass


class PaginationMetadataSchema(Schema):
    paginationIndex = fields.String()
    nextPaginationIndex = fields.String(allow_none=True)
    reversePagination = fields.Boolean()
    skipCount = fields.Integer()
    limit = fields.Integer()
    count = fields.Integer()
    totalCount = fields.Integer()
    proLimitHit = fields.Boolean()


class PaginationArgsSchema(Schema):
    """Mix into (or nest beside) an endpoint's query schema."""

    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT),
                           metadata={"description": f"At most {MAX_LIMIT}; default {DEFAULT_LIMIT}."})
    paginationIndex = fields.String(validate=validate.Regexp(r"^\d{1,15}$", error="Must be a stringified integer (epoch ms)."),
                                    metadata={"description": "Reference timestamp (epoch ms), exclusive."})
    skipCount = fields.Integer(validate=validate.Range(min=0, max=10_000_000))
    reversePagination = fields.Boolean(load_default=False)


_envelopes: dict[str, type[Schema]] = {}


def envelope(name: str, payload: fields.Field | None = None, paginated: bool = False) -> type[Schema]:
    """A response schema ``{hasError, payload, metadata?}`` whose payload is ``payload``."""
    if name not in _envelopes:
        attrs = {
            "hasError": fields.Boolean(required=True, dump_default=False),
            "payload": payload if payload is not None else fields.Raw(allow_none=True),
        }
        if paginated:
            attrs["metadata"] = fields.Nested(PaginationMetadataSchema)
        _envelopes[name] = type(name, (Schema,), attrs)
    return _envelopes[name]


def success_schema(name: str, **payload_fields: fields.Field) -> type[Schema]:
    """Envelope whose payload is an object with ``payload_fields``."""
    payload_schema = type(f"{name}Payload", (Schema,), payload_fields)
    return envelope(name, fields.Nested(payload_schema))


class ContractSchema(Schema):
    """A response object of the contract: an optional property the object does not have
    (None) is left out; one declared ``allow_none`` is the contract's null and stays."""

    @functools.cached_property
    def _nullable(self) -> frozenset[str]:
        return frozenset(field.data_key or name for name, field in self.dump_fields.items() if field.allow_none)

    @post_dump
    def _leave_out_absent(self, data, **kwargs):
        return {k: v for k, v in data.items() if v is not None or k in self._nullable}
