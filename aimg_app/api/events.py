"""Beyond the contract: the signed-in caller's generation events, pushed (Server-Sent Events)."""
from __future__ import annotations

import json

from flask import Response, request, stream_with_context
from marshmallow import Schema, fields, validate

from .. import context
from ..errors import BadRequest
from ..services import events as events_service
from ..services import generation as generation_service
from .base import Blueprint
from .generation import GenerationStatusSchema

blp = Blueprint("events", __name__, url_prefix="/", description="Pushed generation events (Server-Sent Events).")

# A stream ends after this long and the browser reconnects with Last-Event-ID, so a server
# thread is never held by one client for ever.
MAX_STREAM_SECONDS = 300


class EventsArgs(Schema):
    sessionID = fields.String(validate=validate.Length(max=64), metadata={
        "description": "The session, for EventSource (which cannot send headers); X-Session-ID otherwise."})
    lastEventID = fields.String(validate=validate.Length(max=64), metadata={
        "description": "Resume after this event id (the Last-Event-ID header says the same on reconnects)."})


_DESCRIPTION = (
    "Each event has an `id` (resume with `Last-Event-ID`), a type (`queued` with `queuePosition`, `started`, "
    "`progress`, `completed` with `url`, `failed` and `cancelled` with `errorMessage`) and, as `data`, the Item's "
    "GenerationStatus as JSON. The last 500 events of the caller are kept for a day. A stream lasts at most "
    f"{MAX_STREAM_SECONDS} s; EventSource reconnects by itself and resumes without loss.")


@blp.route("/events", methods=["GET"])
@blp.arguments(EventsArgs, location="query")
@blp.response(200, description="text/event-stream", content_type="text/event-stream")
@blp.doc(description=_DESCRIPTION, responses={"200": {"description": "A stream of events.", "content": {
    "text/event-stream": {"schema": {"type": "string"}, "example": (
        'id: 1735689600000-0\nevent: completed\ndata: {"imageID":"6650f0c2a1b2c3d4e5f60719",'
        '"status":"completed","url":"/getFile?id=6650f0c2a1b2c3d4e5f60719.png","progress":1.0}\n\n')}}}})
def events(args):
    """The caller's generation events as Server-Sent Events, resumable with Last-Event-ID."""
    if args.get("sessionID") and not request.headers.get("X-Session-ID"):
        request.environ["HTTP_X_SESSION_ID"] = args["sessionID"]  # one reader of the session: context
    sid = context.require_session_header()
    user = context.current_user(required=False)
    owner = user.id if user is not None else generation_service.anonymous_owner(sid)
    raw_last = request.headers.get("Last-Event-ID") or args.get("lastEventID")
    last_id = events_service.valid_event_id(raw_last)
    if raw_last and last_id is None:
        raise BadRequest("Last-Event-ID must be an event id this stream sent.")
    resources = context.resources()
    connection = events_service.reader_connection(resources.settings.redis_url)
    schema = GenerationStatusSchema()
    body = events_service.stream(connection, owner, last_id, MAX_STREAM_SECONDS,
                                 render=lambda status: json.dumps(schema.dump(status), separators=(",", ":")))
    return Response(stream_with_context(body), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
