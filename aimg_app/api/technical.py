"""The contract's Technical chapter: logs, affiliate ads, files, admin SQL."""
from __future__ import annotations

from urllib.parse import quote

from flask import Response, request
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from .. import context
from ..envelope import ok
from ..errors import BadRequest, PayloadTooLarge
from ..ratelimit import client_key, limiter, user_or_session_or_client_key
from ..services import ads as ads_service
from ..services import files as files_service
from ..services import logs as logs_service
from ..services import pgquery as pgquery_service
from .base import Blueprint, admin_only, envelope, success_schema

blp = Blueprint("technical", __name__, url_prefix="/", description="Technical: logs, affiliate ads, files, admin SQL.")

SERVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}){1,7}$"


class LogEntrySchema(Schema):
    timestamp = fields.Integer(validate=validate.Range(min=0, max=10**13),
                               metadata={"description": "UNIX epoch in ms; defaults to the time of ingestion."})
    message = fields.String(required=True, validate=validate.Length(min=1, max=10_000))
    level = fields.String(load_default="info", validate=validate.OneOf(["info", "warn", "error"]))
    apiSubscope = fields.String(validate=validate.Length(max=200))
    httpMethod = fields.String(validate=validate.OneOf(["GET", "POST", "PUT", "PATCH", "DELETE"]))
    httpPath = fields.String(validate=validate.Length(max=2048))
    httpUrl = fields.String(validate=validate.Length(max=4096))
    errorName = fields.String(validate=validate.Length(max=200))
    errorMessage = fields.String(validate=validate.Length(max=10_000))
    errorStack = fields.String(validate=validate.Length(max=50_000))


class IngestLogsSchema(Schema):
    serviceName = fields.String(
        validate=validate.Regexp(SERVICE_NAME, error="Must look like 'FrontEnd/Client/{{DomainDisplayName}}/{{EnvironmentIdentifier}}' (2-8 segments)."),
        metadata={"description": "Defaults to FrontEnd/Client/{DomainDisplayName}/{EnvironmentIdentifier}."},
    )
    logs = fields.List(fields.Nested(LogEntrySchema), required=True, validate=validate.Length(min=1, max=1000))


SuccessResponse = success_schema("SuccessResponse", success=fields.Boolean(required=True))


@blp.route("/ingestLogs", methods=["POST"])
@limiter.limit(lambda: context.resources().settings.ingest_logs_rate_limit_per_client, key_func=client_key,
               scope="ingest-logs-client")
@limiter.limit(lambda: context.resources().settings.ingest_logs_rate_limit, key_func=user_or_session_or_client_key,
               scope="ingest-logs")
@blp.arguments(IngestLogsSchema)
@blp.response(200, SuccessResponse)
def ingest_logs(body):
    """Ingest front-end logs into the central log store (PostgreSQL).

    X-Session-ID is mandatory unless a valid X-Administration-Key is given.
    """
    admin = context.admin_name()
    session = None
    if admin is None:
        context.require_session_header()
        session = context.current_session()
    domain = context.domain()
    service_name = body.get("serviceName") or f"FrontEnd/Client/{domain.display_name}/{domain.environment}"
    origin = logs_service.LogOrigin(
        request_id=context.request_id(), domain=domain.identifier, session_id=session.id if session else None,
        user_id=session.user_id if session else None, admin_name=admin,
    )
    logs_service.ingest_logs(context.resources().pg, service_name, body["logs"], origin)
    return ok({"success": True})


AffiliateAdResponse = success_schema("AffiliateAdResponse", adText=fields.String(), adLink=fields.String())


@blp.route("/getAffiliateAd", methods=["GET"])
@blp.response(200, AffiliateAdResponse)
def get_affiliate_ad():
    """An affiliate ad for the front-end to display (404 when none is configured)."""
    ad = ads_service.pick_affiliate_ad(context.resources().affiliate_ad_providers, context.domain())
    return ok({"adText": ad.text, "adLink": ad.link})


# --- files ------------------------------------------------------------------------------


class FileMetadataSchema(Schema):
    id = fields.String(required=True)
    publicUrl = fields.String(required=True)
    fileName = fields.String(required=True)
    contentType = fields.String(required=True)
    fileSize = fields.Integer(required=True)
    createdDate = fields.String(required=True, metadata={"description": "ISO 8601"})
    checksum = fields.String(required=True)
    checksumAlgorithm = fields.String(required=True)
    ownerId = fields.String()
    customMetadata = fields.Dict()


FileMetadataResponse = envelope("FileMetadataResponse", fields.Nested(FileMetadataSchema))


class UploadFilesSchema(Schema):
    file = Upload(required=True, metadata={"description": "The file (multipart part with a filename)."})


class UploadFormSchema(Schema):
    id = fields.String(metadata={"description": "Client-chosen id (1-128 of [A-Za-z0-9._-]); generated when absent."})
    customMetadata = fields.String(metadata={"description": "A JSON object, as a string."})
    filename = fields.String(metadata={"description": "The file's name, when the part carries none."})


class FileIdSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=128))


class GetFileSchema(FileIdSchema):
    skipChecksum = fields.Boolean(load_default=False)
    width = fields.Integer(validate=validate.Range(min=1, max=8192))
    height = fields.Integer(validate=validate.Range(min=1, max=8192))
    mode = fields.String(validate=validate.OneOf(["fit", "fill"]))
    fs = fields.Boolean(load_default=False)


def _base_url() -> str:
    return context.resources().settings.public_base_url or request.host_url.rstrip("/")


@blp.route("/uploadFile", methods=["POST"])
@admin_only
@blp.arguments(UploadFilesSchema, location="files")
@blp.arguments(UploadFormSchema, location="form")
@blp.response(200, FileMetadataResponse)
def upload_file(files, form):
    """Upload a file to the file server (admins only). multipart/form-data."""
    admin = context.require_admin()
    upload = files["file"]
    limit = context.resources().settings.max_file_bytes
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The file is larger than {limit} bytes.")
    if not data:
        raise BadRequest("file is empty.")
    record = files_service.store_file(
        context.resources().files,
        data=data,
        file_name=upload.filename or form.get("filename") or "",
        content_type=upload.mimetype,
        domain=context.domain().identifier,
        file_id=form.get("id") or None,
        custom_metadata=files_service.parse_custom_metadata(form.get("customMetadata")),
        created_by=admin,
    )
    return ok(files_service.file_metadata(record, _base_url()))


@blp.route("/getFile", methods=["GET"])
@blp.arguments(GetFileSchema, location="query")
@blp.response(200, description="The file's bytes, served inline with its MIME type.")
def get_file(args):
    """Download a file (inline, with its stored MIME type); resizes png/jpg/jpeg/gif."""
    settings = context.resources().settings
    files_service.check_item_file(args["id"], domain=context.domain().identifier)
    content = files_service.read_file(
        context.resources().files, args["id"], skip_checksum=args["skipChecksum"], width=args.get("width"),
        height=args.get("height"), mode=args.get("mode"), legacy_url=settings.legacy_file_server_url,
        use_legacy=args["fs"], max_bytes=settings.max_file_bytes,
    )
    return file_response(content)


def file_response(content: files_service.FileContent) -> Response:
    """A file's bytes, inline; also what the Admin UI serves its thumbnails with."""
    response = Response(content.data, mimetype=content.content_type)
    response.headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(content.file_name)}"
    # Uploaded bytes are served as data, never as an active document of the API's origin.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@blp.route("/getFileMetadata", methods=["GET"])
@admin_only
@blp.arguments(FileIdSchema, location="query")
@blp.response(200, FileMetadataResponse)
def get_file_metadata(args):
    """The metadata of a file (admins only)."""
    context.require_admin()
    return ok(files_service.file_metadata(files_service.get_metadata(args["id"]), _base_url()))


@blp.route("/removeFile", methods=["DELETE"])
@admin_only
@blp.arguments(FileIdSchema, location="query")
@blp.response(200, SuccessResponse)
def remove_file(args):
    """Remove a file (admins only)."""
    context.require_admin()
    files_service.remove_file(context.resources().files, args["id"])
    return ok({"success": True})


# --- admin SQL --------------------------------------------------------------------------


class PgQuerySchema(Schema):
    queryText = fields.String(required=True, metadata={"description": "SQL; $1, $2... refer to queryParams."})
    queryParams = fields.List(fields.Raw(allow_none=True), metadata={"description": "Values of $1, $2..."})


@blp.route("/pgQuery", methods=["POST"])
@admin_only
@blp.arguments(PgQuerySchema)
@blp.response(200, envelope("PgQueryResponse"))
def pg_query(body):
    """Run SQL on PostgreSQL (admins only) as a role that can only read, with a timeout and
    a row cap. The payload is node-postgres' Result: command, rowCount, rows, fields."""
    context.require_admin()
    res = context.resources()
    runner = pgquery_service.run_write_query if res.pgquery_writes else pgquery_service.run_query
    result = runner(res.query_pool, body["queryText"], body.get("queryParams"),
                    timeout_s=res.settings.pgquery_timeout_s, max_rows=res.settings.pgquery_max_rows)
    return ok(result)
