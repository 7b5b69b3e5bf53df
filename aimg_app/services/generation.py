"""The legacy Image Generation chapter: models, generateImage/generateVideo (mapped onto the
models' workflow templates), item status, queue lengths, sample prompts, and cancelling."""
from __future__ import annotations

import base64
import binascii
import io
import random
import re
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from .. import queueing
from ..errors import BadRequest, Forbidden, NotFound, Unauthorized
from ..models.item import Item
from ..models.workflow import WorkflowState
from ..models.base import iso, utcnow
from ..plugin_api import GenerationModel
from . import abuse, eta, files as files_service, items as items_service, runs, tiers
from .catalogue import get_template
from .graph_render import render_graph
from .prompt_filter import filter_prompt
from .template_parameters import resolve_parameters
from .workflows import RunPlan, _item_params, concurrency_cap, priority_for, start_run

DEFAULT_IMAGE_MODEL = "f222"
DEFAULT_VIDEO_MODEL = "model3"
MAX_INPUT_BYTES = 10 * 1024 * 1024
MAX_INPUT_PIXELS = 40_000_000
_DATA_URI = re.compile(r"^data:(image/[a-z0-9.+-]+);base64,(.*)$", re.IGNORECASE | re.DOTALL)


def anonymous_owner(session_id: str) -> str:
    """Who owns what an anonymous caller generates (models without a registration wall)."""
    return f"session:{session_id}"


# --- models -------------------------------------------------------------------------------


def list_models(resources, model_ids: list[str] | None) -> list[GenerationModel]:
    models = resources.generation_models.values()
    return [m for m in models if model_ids is None or m.identifier in model_ids]


def queue_lengths(resources, model_ids: list[str] | None) -> list[dict]:
    """Both queues of every model (and of every workflow template, whose modelID is the
    template's name), with their lengths from Redis."""
    rows: list[tuple[str, str]] = []
    for kind, ids in (("gen", resources.generation_models), ("wf", resources.workflow_templates)):
        for identifier in ids:
            if model_ids is not None and identifier not in model_ids:
                continue
            for priority in (False, True):
                rows.append((identifier, queueing.queue_name(kind, identifier, priority)))
    counts = queueing.lengths(resources.redis, [name for _, name in rows])
    return [{"modelID": model_id, "queueID": name, "queueLength": counts[name]} for model_id, name in rows]


def sample_prompts(resources, random_one: bool) -> list[dict]:
    prompts: list[dict] = []
    seen = set()
    for model in resources.generation_models.values():
        for sample in model.sample_prompts:
            if sample.positive_prompt in seen:
                continue
            seen.add(sample.positive_prompt)
            entry = {"positivePrompt": sample.positive_prompt}
            if sample.negative_prompt:
                entry["negativePrompt"] = sample.negative_prompt
            prompts.append(entry)
    if random_one and prompts:
        return [random.choice(prompts)]
    return prompts


# --- generateImage / generateVideo --------------------------------------------------------


def _validate_against_model(model: GenerationModel, body: dict) -> dict:
    """The legacy fields, defaulted and checked against the model; 400 names the field."""
    request: dict[str, Any] = {"prompt": body["prompt"]}
    steps = body.get("steps")
    steps = model.default_steps if steps is None else steps
    if int(steps) != steps or not model.min_steps <= steps <= model.max_steps:
        raise BadRequest(f"steps must be an integer from {model.min_steps} to {model.max_steps} for model '{model.identifier}'.")
    request["steps"] = int(steps)
    width, height = body.get("width"), body.get("height")
    width = model.default_resolution[0] if width is None else width
    height = model.default_resolution[1] if height is None else height
    if width not in model.allowed_widths:
        raise BadRequest(f"width must be one of {', '.join(map(str, model.allowed_widths))} for model '{model.identifier}'.")
    if height not in model.allowed_heights:
        raise BadRequest(f"height must be one of {', '.join(map(str, model.allowed_heights))} for model '{model.identifier}'.")
    if width * height > model.max_resolution:
        raise BadRequest(f"width x height must be at most {model.max_resolution} pixels for model '{model.identifier}'.")
    request["width"], request["height"] = int(width), int(height)
    sampler = body.get("sampler") or model.default_sampler
    if sampler not in model.allowed_samplers:
        raise BadRequest(f"sampler must be one of: {', '.join(model.allowed_samplers)} (model '{model.identifier}').")
    request["sampler"] = sampler
    cfg = body.get("cfgscale")
    cfg = 7.0 if cfg is None else float(cfg)
    low, high = max(1.0, model.min_cfg_scale), min(12.0, model.max_cfg_scale)
    if not low <= cfg <= high:
        raise BadRequest(f"cfgscale must be from {low:g} to {high:g}.")
    request["cfgscale"] = cfg
    seed = body.get("seed")
    request["seed"] = int(seed) if seed is not None and seed >= 0 else random.randint(0, 2**32 - 1)
    for key in ("negprompt", "subseed", "subseed_strength"):
        if body.get(key) is not None:
            request[key] = body[key]
    request["restoreFaces"] = bool(body.get("restoreFaces", model.default_face_fix))
    return request


def _input_file(resources, raw: str, owner_id: str, domain: str) -> str:
    """generateVideo's ``input``: a file id of the file store, or an image Data URI (stored)."""
    match = _DATA_URI.match(raw.strip())
    if match is None:
        return raw
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("input is not valid base64.") from None
    if len(data) > MAX_INPUT_BYTES:
        raise BadRequest(f"input must be at most {MAX_INPUT_BYTES // (1024 * 1024)} MB.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_INPUT_PIXELS:
                raise BadRequest("input has too many pixels.")
            fmt = (img.format or "png").lower()
            img.verify()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise BadRequest("input is not an image.") from None
    record = files_service.store_file(resources.files, data=data, file_name=f"input.{fmt}",
                                      content_type=f"image/{fmt}", domain=domain, owner_id=owner_id)
    return record.id


def generate(resources, *, user, session_id: str, domain: str, body: dict, mtype: str) -> GenerationStatus:
    """generateImage (``mtype`` "image") or generateVideo ("video"): one Item, queued."""
    default = DEFAULT_IMAGE_MODEL if mtype == "image" else DEFAULT_VIDEO_MODEL
    model_id = body.get("modelName") or default
    model = resources.generation_models.get(model_id)
    if model is None:
        raise BadRequest(f"Unknown model '{model_id}'.")
    if model.mtype != mtype:
        other = "generateVideo" if model.mtype == "video" else "generateImage"
        raise BadRequest(f"Model '{model_id}' generates {model.mtype}s; use {other}.")
    if user is None and model.registration_wall:
        raise Unauthorized(f"Sign up to generate with model '{model_id}'.")
    if user is not None:
        abuse.require_generate_and_publish(user)
    tier = tiers.tier_of(user)
    if tier < model.min_tier:
        raise Forbidden(f"Model '{model_id}' needs PRO tier {model.min_tier} or higher.")
    request = _validate_against_model(model, body)
    owner = user.id if user is not None else anonymous_owner(session_id)
    request["prompt"], ignored = filter_prompt(resources, body["prompt"], user, domain)
    if not request["prompt"].strip():
        raise BadRequest("prompt is empty once the ignored words are removed.")

    template_name = model.workflow_template
    preset = body.get("controlNetPreset")
    source = body.get("input")
    if source:
        if not model.input_template:
            raise BadRequest(f"Model '{model_id}' does not take an input image.")
        template_name = model.input_template
    template = get_template(resources, template_name)
    if preset:
        if preset not in template.control_net_presets:
            if not source and model.input_template and preset in get_template(resources, model.input_template).control_net_presets:
                raise BadRequest("controlNetPreset needs an input image.")
            choices = ", ".join(template.control_net_presets) or "none"
            raise BadRequest(f"Unknown controlNetPreset '{preset}' for model '{model_id}' (choices: {choices}).")
    values = model.template_values(request)
    if source:
        values["Input Image"] = _input_file(resources, source, owner, domain)
    resolved = resolve_parameters(template, values, owner)
    graph = render_graph(template, resolved, preset)
    tier_limit = model.concurrency_for_tier(tier)
    plan = RunPlan(
        owner_id=owner, domain=domain, user_email=getattr(user, "email", None) if user else None, template=template,
        resolved=resolved, graph=graph, generator_version="1", queue_kind="gen", queue_base=model.identifier,
        priority=priority_for(user), concurrency_limit=concurrency_cap(user, tier_limit),
        concurrency_filter={"model_id": model.identifier}, concurrency_label=f"model '{model.identifier}'", count=1,
        model_id=model.identifier, folder_id=body.get("folderID"), ignored_words=ignored,
        item_params=_item_params(template, resolved.typed, body["prompt"], model_name=model.label, model_id=model.identifier,
                                 sampler=request["sampler"], restore_faces=request["restoreFaces"],
                                 subseed=request.get("subseed"), subseed_strength=request.get("subseed_strength"),
                                 negprompt=body.get("negprompt") or None),
    )
    state, items, position = start_run(resources, plan)
    return status_of(items[0], state, position)


# --- status -------------------------------------------------------------------------------


@dataclass
class GenerationStatus:
    """What generateImage/generateVideo, getItemStatus and the event stream tell of an Item
    (GenerationStatusSchema names it on the wire). Plain values, so an idempotent answer and an
    event can be stored as JSON (``asdict``) and read back; a None member is absent."""

    image_id: str
    status: str
    ignored_words: list[str]
    mtype: str
    progress: float
    folder_id: str | None = None
    url: str | None = None
    queue_position: int | None = None
    error_message: str | None = None
    status_message: str | None = None
    estimated_seconds_remaining: float | None = None
    frames: list[dict] | None = None  # {"frame_count", "frame_number", "url"}


_STATUS_FIELDS = frozenset(GenerationStatus.__dataclass_fields__)


# The wire names an answer or event stored by an earlier version holds (kept up to 24 h).
_EARLIER_NAMES = {"imageID": "image_id", "folderID": "folder_id", "ignoredWords": "ignored_words",
                  "queuePosition": "queue_position", "errorMessage": "error_message",
                  "statusMessage": "status_message", "estimatedSecondsRemaining": "estimated_seconds_remaining"}
_EARLIER_FRAME_NAMES = {"frameCount": "frame_count", "frameNumber": "frame_number", "frameUrl": "url"}


def stored_status(data: dict) -> GenerationStatus:
    """A GenerationStatus read back from its stored JSON (``asdict``). An idempotent answer
    or an event stored before an upgrade holds the wire's names instead: read those too, so
    a repeat still gets its first answer rather than an error or a second generation."""
    if "image_id" in data:
        return GenerationStatus(**data)
    fields = {_EARLIER_NAMES.get(k, k): v for k, v in data.items() if _EARLIER_NAMES.get(k, k) in _STATUS_FIELDS}
    if isinstance(fields.get("ignored_words"), str):
        fields["ignored_words"] = [w for w in fields["ignored_words"].split(", ") if w]
    if fields.get("frames"):
        fields["frames"] = [{_EARLIER_FRAME_NAMES.get(k, k): v for k, v in f.items()} for f in fields["frames"]]
    fields.setdefault("ignored_words", [])
    fields.setdefault("progress", 0.0)
    return GenerationStatus(**fields)


def status_of(item: Item, state: WorkflowState | None, position: int | None = None,
              eta: float | None = None) -> GenerationStatus:
    """The contract's GenerationStatus (plus ``progress`` and, when failed or cancelled, ``error_message``)."""
    open_ = item.status in ("queued", "running")
    return GenerationStatus(
        image_id=item.id, status=item.status, ignored_words=list(item.ignored_words or []), mtype=item.mtype,
        progress=round(float(item.progress or 0.0), 4),
        folder_id=item.folder_id or None,  # the Item's own: None once its folder was deleted
        url=item.url or None,
        queue_position=position if item.status == "queued" else None,
        error_message=(item.error_message or None) if item.status in ("failed", "cancelled") else None,
        status_message=(state.status_message or None) if state is not None and open_ else None,
        estimated_seconds_remaining=eta if open_ else None,
        frames=[{"frame_count": f.frame_count, "frame_number": f.frame_number, "url": f.url} for f in item.frames]
        if item.mtype == "video" and item.frames else None,
    )


def _owns(item_owner: str, user, session_id: str | None) -> bool:
    if user is not None and item_owner == user.id:
        return True
    return session_id is not None and item_owner == anonymous_owner(session_id)


def item_status(resources, image_id: str, *, user, session_id: str | None, is_admin: bool) -> GenerationStatus:
    item = Item.objects(id=image_id).first()
    if item is None or item.is_deleted or not (is_admin or _owns(item.user_id, user, session_id)):
        raise NotFound(f"Item '{image_id}' does not exist.")
    state = WorkflowState.objects(public_id=item.workflow_id).first() if item.workflow_id else None
    position = None
    if item.status == "queued" and item.queue_name and item.job_id:
        position = queueing.position(resources.redis, item.queue_name, item.job_id)
    return status_of(item, state, position, eta.seconds_remaining(resources, state, position) if state else None)


# --- cancelling ---------------------------------------------------------------------------


CANCELLED_MESSAGE = items_service.CANCELLED_MESSAGE


def cancel(resources, *, image_id: str | None, workflow_id: str | None, user, session_id: str | None,
           is_admin: bool) -> list[dict]:
    """Cancel a run (by one of its Items or its workflowId): a queued job leaves its queue,
    a running one is interrupted by its worker. Answers per Item."""
    if bool(image_id) == bool(workflow_id):
        raise BadRequest("Give exactly one of imageID and workflowId.")
    if image_id:
        item = Item.objects(id=image_id).only("user_id", "workflow_id").first()
        if item is None or not (is_admin or _owns(item.user_id, user, session_id)) or not item.workflow_id:
            raise NotFound(f"Item '{image_id}' does not exist.")
        workflow_id = item.workflow_id
    state = WorkflowState.objects(public_id=workflow_id).first()
    if state is None or not (is_admin or _owns(state.user_id, user, session_id)):
        raise NotFound(f"Workflow '{workflow_id}' does not exist.")
    taken = False  # the cancel holds: the run's open Items end cancelled, whatever its worker does next
    if state.state == "queued" and queueing.remove_queued(resources.redis, state.queue_name, state.id):
        taken = runs.cancel_queued(state, resources.redis)
    elif state.state in ("queued", "running"):
        # Pushed to the worker that holds the run: it interrupts ComfyUI at once, and a run
        # that ComfyUI had already finished is not completed (``runs.complete``).
        taken = runs.request_cancel(resources.redis, state)
    answers = []
    for item in Item.objects(id__in=state.item_ids).only("id", "status"):
        ending = taken and item.status in ("queued", "running")
        answers.append({"imageID": item.id, "status": "cancelled" if ending else item.status,
                        "cancelled": ending or item.status == "cancelled"})
    return answers
