"""Beyond the contract: the signed-in caller's generation events, pushed (Server-Sent Events)."""
from __future__ import annotations

import json
import uuid

from flask import Response, request, stream_with_context
from marshmallow import Schema, fields, validate

from .. import context
from ..errors import BadRequest, TooManyRequests
from ..ratelimit import client_key
from ..services import events as events_service
from ..services import generation as generation_service
from .base import Blueprint
from .generation import GenerationStatusSchema

blp = Blueprint("events", __name__, url_prefix="/", description="Pushed generation events (Server-Sent Events).")

class EventsArgs(Schema):
    sessionID = fields.String(validate=validate.Length(max=64), metadata={
        "description": "The session, for EventSource (which cannot send headers); X-Session-ID otherwise."})
    lastEventID = fields.String(validate=validate.Length(max=64), metadata={
        "description": "Resume after this event id (the Last-Event-ID header says the same on reconnects)."})


_DESCRIPTION = (
    "Each event has an `id` (resume with `Last-Event-ID`), a type (`queued` with `queuePosition`, `started`, "
    "`progress`, `completed` with `url`, `failed` and `cancelled` with `errorMessage`) and, as `data`, the Item's "
    "GenerationStatus as JSON. `started` comes once a run has executed for a quarter of a second: a shorter run "
    "goes from `queued` straight to its end. The last 500 events of the caller are kept for a day. A stream lasts at most "
    "`AIMG_EVENTS_STREAM_SECONDS` (300 s unless configured); EventSource reconnects by itself and resumes without loss.")


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
    settings = context.resources().settings
    connection = events_service.reader_connection(settings.redis_url)
    # Each open stream holds a thread and a Redis connection: capped per owner and per address.
    keys = events_service.slot_keys(owner, client_key())
    token = uuid.uuid4().hex
    full = events_service.take_slot(connection, keys, [settings.events_streams_per_user,
                                                       settings.events_streams_per_client], token)
    if full:
        raise TooManyRequests("Too many open event streams " + ("for this user." if full == 1 else "from this address.")
                              + " Close one first.")
    def renew() -> bool:
        """Keep the slot, and end the stream once the session no longer signs in its owner
        (signed out, a password change, disabled, deleted): checked at every wake, before
        anything is sent (one Redis read while the session and user are unchanged: the
        identity cache)."""
        events_service.renew_slot(connection, keys, token)
        if user is None:
            return True
        now = context.signed_in_user_of(sid)
        return now is not None and now.id == user.id

    schema = GenerationStatusSchema()
    body = events_service.stream(connection, owner, last_id, settings.events_stream_seconds,
                                 render=lambda stored: json.dumps(schema.dump(generation_service.stored_status(stored)),
                                                                     separators=(",", ":")),
                                 block_ms=events_service.BLOCK_MS,
                                 renew=renew)
    response = Response(stream_with_context(body), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    # called by the WSGI server however the response ends (finished, or the client gone),
    # even when the body was never started
    response.call_on_close(lambda: events_service.release_slot(connection, keys, token))
    return response
