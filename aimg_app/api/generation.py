"""The contract's Image Generation chapter, plus cancelGeneration."""
from __future__ import annotations

from dataclasses import asdict, replace

from flask import current_app, request
from marshmallow import Schema, fields, validate
from marshmallow.utils import get_value

from .. import context, queueing
from ..envelope import ok
from ..services import generation as generation_service
from ..services.generation import GenerationStatus
from ..services import idempotency
from .base import Blueprint, ContractSchema, envelope
from .fields import IdList, derived

blp = Blueprint("generation", __name__, url_prefix="/", description="Image Generation.")

IDEMPOTENCY_HEADER = {
    "in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string", "maxLength": 255},
    "description": "A repeat from the same user with the same key within 24 h returns the first answer and "
                   "queues nothing new.",
}
_PROMPT = fields.String(required=True, validate=validate.Length(min=1, max=4000))
_ID = fields.String(validate=validate.Length(min=1, max=128))


class VideoFrameSchema(ContractSchema):
    frameCount = fields.Integer(required=True, attribute="frame_count")
    frameNumber = fields.Integer(required=True, attribute="frame_number")
    frameUrl = fields.String(required=True, attribute="url")


class GenerationStatusSchema(ContractSchema):
    """Dumps a ``services.generation.GenerationStatus`` (or its ``asdict``)."""

    imageID = fields.String(required=True, attribute="image_id")
    folderID = fields.String(attribute="folder_id")
    status = fields.String(required=True, metadata={"description": "queued, running, completed, failed or cancelled"})
    ignoredWords = derived(fields.String, lambda s: ", ".join(get_value(s, "ignored_words") or []), required=True,
                            metadata={"description": "The ignored words, comma-separated."})
    mtype = fields.String(required=True)
    url = fields.String()
    queuePosition = fields.Integer(attribute="queue_position",
                                   metadata={"description": "1 = next to start; only while queued."})
    frames = fields.List(fields.Nested(VideoFrameSchema))
    progress = fields.Float(metadata={"description": "0 to 1, while running."})
    errorMessage = fields.String(attribute="error_message",
                                 metadata={"description": "Why it failed, when status is failed."})
    estimatedSecondsRemaining = fields.Float(attribute="estimated_seconds_remaining", metadata={
        "description": "Seconds until it is likely done, from measured service times (an addition)."})
    statusMessage = fields.String(attribute="status_message",
                                  metadata={"description": "Why it is not generating yet, e.g. "
                                            "\"waiting for a generation server\", or no worker is running (an addition)."})


GenerationStatusResponse = envelope("GenerationStatusResponse", fields.Nested(GenerationStatusSchema))


class GenerateImageSchema(Schema):
    prompt = _PROMPT
    negprompt = fields.String(validate=validate.Length(max=4000))
    modelName = fields.String(validate=validate.Length(min=1, max=100))
    steps = fields.Integer(strict=False)
    seed = fields.Integer(validate=validate.Range(min=-1, max=2**32 - 1))
    subseed = fields.Integer(validate=validate.Range(min=-1, max=2**32 - 1))
    subseed_strength = fields.Float(validate=validate.Range(min=0, max=1))
    height = fields.Integer()
    width = fields.Integer()
    sampler = fields.String(validate=validate.Length(max=100))
    cfgscale = fields.Float()
    restoreFaces = fields.Boolean()
    folderID = _ID


class GenerateVideoSchema(Schema):
    prompt = _PROMPT
    negprompt = fields.String(validate=validate.Length(max=4000))
    modelName = fields.String(validate=validate.Length(min=1, max=100))
    steps = fields.Integer()
    seed = fields.Integer(validate=validate.Range(min=-1, max=2**32 - 1))
    restoreFaces = fields.Boolean()
    input = fields.String(validate=validate.Length(min=1, max=15_000_000),
                          metadata={"description": "A source image: a file id, or an image Data URI."})
    controlNetPreset = fields.String(validate=validate.Length(min=1, max=100),
                                     metadata={"description": "A preset the model's template declares (needs input)."})
    folderID = _ID


NO_WORKER_MESSAGE = ("Queued, but no generation worker is running: it starts when one does "
                     "(`aimg worker`, or `aimg serve` without --no-worker).")


def _hint(status: GenerationStatus) -> GenerationStatus:
    # A worker's own word on the run ("waiting for a generation server") says more than this.
    if (status.status == "queued" and not status.status_message
            and not queueing.workers_alive(context.resources().redis)):
        return replace(status, status_message=NO_WORKER_MESSAGE)
    return status


def _generate(body: dict, mtype: str, endpoint: str) -> GenerationStatus:
    context.require_session_header()
    session = context.current_session()
    user = context.current_user(required=False)
    domain = context.domain().identifier
    owner = user.id if user else generation_service.anonymous_owner(session.id)
    resources = context.resources()
    # The first answer is kept as JSON, so a repeat gets the very same one.
    answer = idempotency.run_once(
        resources.redis, scope=f"{domain}:{owner}:{endpoint}", key=request.headers.get("Idempotency-Key"),
        request=body,
        work=lambda: asdict(generation_service.generate(resources, user=user, session_id=session.id, domain=domain,
                                                        body=body, mtype=mtype)))
    return generation_service.stored_status(answer)


@blp.route("/generateImage", methods=["POST"])
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(GenerateImageSchema)
@blp.response(200, GenerationStatusResponse)
def generate_image(body):
    """Queue the generation of an image with a Model (default f222)."""
    return ok(_hint(_generate(body, "image", "generateImage")))


@blp.route("/generateVideo", methods=["POST"])
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(GenerateVideoSchema)
@blp.response(200, GenerationStatusResponse)
def generate_video(body):
    """Queue the generation of a video with a Model (default model3)."""
    return ok(_hint(_generate(body, "video", "generateVideo")))


class ItemStatusArgs(Schema):
    imageID = fields.String(required=True, validate=validate.Length(min=1, max=128))


@blp.route("/getItemStatus", methods=["GET"])
@blp.arguments(ItemStatusArgs, location="query")
@blp.response(200, GenerationStatusResponse)
def get_item_status(args):
    """The generation status of an Item (its owner's, or any with an admin key)."""
    session_id = context.session_id_header()
    user = context.current_user(required=False)
    if user is None and session_id is None and context.admin_name() is None:
        context.require_session_header()
    return ok(_hint(generation_service.item_status(context.resources(), args["imageID"], user=user,
                                                   session_id=session_id, is_admin=context.admin_name() is not None)))


class ModelIdsArgs(Schema):
    modelIDs = IdList(metadata={"description": "Comma-separated model ids (an array is accepted)."})


class SampleImageSchema(ContractSchema):
    imageID = fields.String(required=True, attribute="image_id")
    url = fields.String(required=True)


class ModelSchema(ContractSchema):
    """Dumps a ``plugin_api.GenerationModel``."""

    modelID = fields.String(required=True, attribute="identifier")
    name = fields.String(required=True, attribute="label")
    description = fields.String(required=True)
    mediaType = fields.String(required=True, attribute="media_type")
    minTier = fields.Integer(required=True, attribute="min_tier")
    tier0Concurrent = fields.Integer(required=True, attribute="tier0_concurrent")
    tier1Concurrent = fields.Integer(required=True, attribute="tier1_concurrent")
    tier2Concurrent = fields.Integer(required=True, attribute="tier2_concurrent")
    positiveTokens = fields.List(fields.String(), required=True, attribute="positive_tokens")
    negativeTokens = fields.List(fields.String(), required=True, attribute="negative_tokens")
    sampleImages = fields.List(fields.Nested(SampleImageSchema), required=True, attribute="sample_images")
    minSteps = fields.Integer(required=True, attribute="min_steps")
    maxSteps = fields.Integer(required=True, attribute="max_steps")
    allowedWidths = fields.List(fields.Integer(), required=True, attribute="allowed_widths")
    allowedHeights = fields.List(fields.Integer(), required=True, attribute="allowed_heights")
    maxResolution = fields.Integer(required=True, attribute="max_resolution")
    defaultResolution = fields.List(fields.Integer(), required=True, attribute="default_resolution")
    allowedSamplers = fields.List(fields.String(), required=True, attribute="allowed_samplers")
    defaultSampler = fields.String(required=True, attribute="default_sampler")
    # The contract's CFG scale runs from 1 to 12 whatever a model declares.
    minCfgScale = derived(fields.Float, lambda m: max(1.0, m.min_cfg_scale), required=True)
    maxCfgScale = derived(fields.Float, lambda m: min(12.0, m.max_cfg_scale), required=True)
    supportsVariations = fields.Boolean(required=True, attribute="supports_variations")
    registrationWall = fields.Boolean(required=True, attribute="registration_wall")
    defaultFaceFix = fields.Boolean(required=True, attribute="default_face_fix")
    wikiURL = derived(fields.String, lambda m: m.wiki_url or None)


ModelsResponse = envelope("ModelsResponse", fields.List(fields.Nested(ModelSchema)))


@blp.route("/getModels", methods=["GET"])
@blp.arguments(ModelIdsArgs, location="query")
@blp.response(200, ModelsResponse)
def get_models(args):
    """The generation Models, in the order to show them."""
    ids = args.get("modelIDs") or None
    if ids is not None:
        return ok(generation_service.list_models(context.resources(), ids))
    # The models are fixed when the process starts: the full list (what a front-end asks for on
    # every page load) is serialised once, by the same schema, and kept.
    if "aimg.models_answer" not in current_app.extensions:
        body = ModelsResponse().dump(ok(generation_service.list_models(context.resources(), None)))
        current_app.extensions["aimg.models_answer"] = current_app.json.dumps(body)
    return current_app.response_class(current_app.extensions["aimg.models_answer"], mimetype="application/json")


class QueueLengthSchema(Schema):
    modelID = fields.String(required=True)
    queueID = fields.String(required=True)
    queueLength = fields.Integer(required=True)


@blp.route("/getQueuesLength", methods=["GET"])
@blp.arguments(ModelIdsArgs, location="query")
@blp.response(200, envelope("QueuesLengthResponse", fields.List(fields.Nested(QueueLengthSchema))))
def get_queues_length(args):
    """Every generation queue (and its -p1- priority twin) with its current length."""
    ids = args.get("modelIDs") or None
    return ok(generation_service.queue_lengths(context.resources(), ids))


class SamplePromptArgs(Schema):
    randomOne = fields.Boolean(load_default=False)


class PromptSchema(Schema):
    positivePrompt = fields.String(required=True)
    negativePrompt = fields.String()
    userID = fields.String()


@blp.route("/getSamplePrompts", methods=["GET"])
@blp.arguments(SamplePromptArgs, location="query")
@blp.response(200, envelope("SamplePromptsResponse", fields.List(fields.Nested(PromptSchema))))
def get_sample_prompts(args):
    """Sample prompts (all, or one at random)."""
    return ok(generation_service.sample_prompts(context.resources(), args["randomOne"]))


class CancelSchema(Schema):
    imageID = _ID
    workflowId = _ID


class CancelAnswerSchema(Schema):
    imageID = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "cancelled, or the Item's status if too late"})
    cancelled = fields.Boolean(required=True)


@blp.route("/cancelGeneration", methods=["POST"])
@blp.arguments(CancelSchema)
@blp.response(200, envelope("CancelGenerationResponse", fields.List(fields.Nested(CancelAnswerSchema))))
def cancel_generation(body):
    """Cancel a generation (one of its Items' imageID, or its workflowId): a queued job leaves
    its queue; a running one is interrupted on its ComfyUI server. Owner or admin."""
    admin = context.admin_name()
    session_id = context.session_id_header()
    user = context.current_user(required=admin is None and session_id is None)
    if admin is None and session_id is None:
        context.require_session_header()
    return ok(generation_service.cancel(context.resources(), image_id=body.get("imageID"),
                                        workflow_id=body.get("workflowId"), user=user, session_id=session_id,
                                        is_admin=admin is not None))
