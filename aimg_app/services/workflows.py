"""Queueing a workflow run (a WorkflowState and its Items) and what API2 shows of runs.

Both API2 (``enqueueWorkflow``) and the legacy ``generateImage``/``generateVideo`` end in
``start_run``, so there is one path from a request to a queued RQ job.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import BadRequest, Forbidden, NotFound, ServiceUnavailable, TooManyRequests
from ..models.item import Item
from ..models.workflow import WorkflowState
from ..plugin_api import WorkflowTemplate
from .. import queueing
from . import abuse, eta, items as items_service, runs, tiers
from .catalogue import get_template
from .graph_render import render_graph
from .prompt_filter import filter_prompt
from .template_parameters import (
    ResolvedParameters,
    batch_parameter,
    bound_parameters,
    resolve_parameters,
    stringify,
    value_of,
)

OPEN_ITEM_STATES = ("queued", "running")

# enqueueWorkflow's explicit body fields; each binds to the parameter whose ``option_name``
# is the field's name (or, failing that, whose name is). ``lora``/``lora_strength`` are lists:
# their n-th value binds to the n-th parameter with that option name.
EXPLICIT_FIELDS = ("prompt", "negprompt", "seed", "subseed", "subseed_strength", "steps", "cfgscale", "modelName",
                   "height", "width", "batchSize")
LIST_FIELDS = ("lora", "lora_strength")


@dataclass
class RunPlan:
    """Everything ``start_run`` needs; built by API2 or by the legacy mapping."""

    owner_id: str
    domain: str
    user_email: str | None
    template: WorkflowTemplate
    resolved: ResolvedParameters
    graph: dict
    generator_version: str
    queue_kind: str  # "gen" or "wf"
    queue_base: str
    priority: bool
    concurrency_limit: int
    concurrency_filter: dict  # Item fields that count against the limit
    concurrency_label: str
    count: int
    item_params: dict
    model_id: str | None = None
    folder_id: str | None = None
    ignored_words: list[str] = field(default_factory=list)


def priority_for(user) -> bool:
    return bool(user is not None and tiers.is_premium(user) and abuse.may_use_priority_queues(user))


def concurrency_cap(user, limit: int) -> int:
    cap = abuse.generation_concurrency_cap(user) if user is not None else None
    return min(limit, cap) if cap is not None else limit


def start_run(resources, plan: RunPlan) -> tuple[WorkflowState, list[Item], int | None]:
    """Create the WorkflowState and its queued Items, then enqueue the job, all under the
    owner's lock so the concurrency limit holds across API processes. Also returns the
    run's place in the queue (``queueing.position``) as its "queued" event told it.

    A ``folder_id`` must be one of the owner's live folders (404 as for any foreign folder):
    nobody generates into another user's folder, and an anonymous caller has none."""
    if plan.folder_id:
        from .folders import owned_folder

        owned_folder(plan.owner_id, plan.folder_id, None)
    redis = resources.redis
    settings = resources.settings
    name = queueing.queue_name(plan.queue_kind, plan.queue_base, plan.priority)
    public_id = str(uuid.uuid4())
    run_parameters = plan.resolved.run_parameters()
    with queueing.user_lock(redis, plan.owner_id):
        running = Item.objects(user_id=plan.owner_id, status__in=OPEN_ITEM_STATES, **plan.concurrency_filter).count()
        if running + plan.count > plan.concurrency_limit:
            if plan.concurrency_limit <= 0:
                raise TooManyRequests(f"Your plan cannot generate with {plan.concurrency_label}.")
            if plan.count > plan.concurrency_limit:  # no amount of waiting would let this batch in
                raise BadRequest(
                    f"A batch of {plan.count} is more than your plan runs at a time with {plan.concurrency_label} "
                    f"({plan.concurrency_limit}); use a batch size of at most {plan.concurrency_limit}.")
            batch = f" and this batch needs {plan.count}" if plan.count > 1 else ""
            raise TooManyRequests(
                f"You already have {running} generation(s) queued or running with {plan.concurrency_label}{batch}; "
                f"your limit is {plan.concurrency_limit} at a time. Wait for one to finish.")
        state_id = uuid.uuid4().hex
        items = items_service.create_queued_items(
            user_id=plan.owner_id, domain=plan.domain, count=plan.count, mtype=plan.template.mtype,
            workflow_id=public_id,
            params={**plan.item_params, "queue_name": name, "job_id": state_id,
                    "generator_version": plan.generator_version, "media_type": plan.template.media_type,
                    "workflow_template_name": plan.template.identifier,
                    "workflow_run_parameters": run_parameters, "ignored_words": plan.ignored_words,
                    "folder_id": plan.folder_id})
        state = runs.create(
            id=state_id, public_id=public_id, domain=plan.domain, user_id=plan.owner_id,
            user_email=plan.user_email, generator_version=plan.generator_version,
            template_name=plan.template.identifier, model_id=plan.model_id, mtype=plan.template.mtype,
            run_parameters=run_parameters, graph_json=json.dumps(plan.graph),
            uploads=plan.resolved.uploads, main_output_node=plan.template.main_output_node,
            frames_output_node=plan.template.frames_output_node, folder_id=plan.folder_id,
            ignored_words=plan.ignored_words, queue_name=name, item_ids=[i.id for i in items],
        )
    try:
        queueing.enqueue_run(redis, name, state_id, job_timeout=settings.generation_job_timeout_s)
    except ServiceUnavailable:
        runs.not_enqueued(state, "The generation queue was unavailable; nothing was generated.")
        raise
    from . import events

    position = queueing.position(redis, name, state_id)
    events.publish_items(redis, items, position=position)  # no read back
    return state, items, position


# --- what API2 shows ----------------------------------------------------------------------


def find_states(public_ids: Iterable[str], owner_id: str | None, is_admin: bool) -> list[WorkflowState]:
    ids = [i for i in dict.fromkeys(public_ids) if i]
    states = {s.public_id: s for s in WorkflowState.objects(public_id__in=ids)}
    found = []
    for public_id in ids:
        state = states.get(public_id)
        if state is None or (not is_admin and state.user_id != owner_id):
            raise NotFound(f"Workflow '{public_id}' does not exist.")
        found.append(state)
    return found


@dataclass
class RunStatus:
    """A run as getWorkflowStatus shows it (``api.workflows.WorkflowStateSchema`` names it)."""

    state: WorkflowState
    position: int | None = None  # in its queue, while queued
    eta: float | None = None  # seconds until it is likely done


def run_statuses(resources, states: Iterable[WorkflowState]) -> list[RunStatus]:
    found = []
    for s in states:
        position = queueing.position(resources.redis, s.queue_name, s.id) if s.state == "queued" else None
        found.append(RunStatus(s, position, eta.seconds_remaining(resources, s, position)))
    return found


# --- API2: enqueueWorkflow ----------------------------------------------------------------


def require_api2(user) -> None:
    if tiers.tier_of(user) <= 0:
        raise Forbidden("API2 endpoints are for users whose PRO tier is higher than 0.")


def enqueue_workflow(resources, user, domain: str, body: dict) -> dict:
    """``/2/enqueueWorkflow``: explicit body fields and ``parameters`` merged by parameter
    name, validated, substituted into the template's graph, queued as one run."""
    require_api2(user)
    abuse.require_generate_and_publish(user)
    template = get_template(resources, body["workflowTemplateName"])
    given: dict[str, Any] = {}
    for entry in body.get("parameters") or []:
        if entry["name"] in given:
            raise BadRequest(f"Parameter '{entry['name']}' is given twice.")
        given[entry["name"]] = entry["value"]
    explicit: dict[str, Any] = {}
    for option in EXPLICIT_FIELDS:
        if body.get(option) is None:
            continue
        targets = bound_parameters(template, option)
        if not targets:
            raise BadRequest(f"Workflow template '{template.identifier}' has no parameter for '{option}'.")
        explicit[targets[0].name] = body[option]
    loras, strengths = body.get("lora") or [], body.get("lora_strength") or []
    if strengths and len(strengths) != len(loras):
        raise BadRequest("lora and lora_strength must have the same length.")
    for option, values in (("lora", loras), ("lora_strength", strengths)):
        targets = bound_parameters(template, option)
        if len(values) > len(targets):
            raise BadRequest(f"Workflow template '{template.identifier}' takes at most {len(targets)} '{option}'.")
        for target, value in zip(targets, values):
            explicit[target.name] = value
    for name, value in explicit.items():
        if name in given and stringify(given[name]) != stringify(value):
            raise BadRequest(f"Parameter '{name}' is given twice with different values.")
        given[name] = value
    prompt_params = bound_parameters(template, "prompt")
    prompt_name = prompt_params[0].name if prompt_params else None
    raw_prompt = str(given.get(prompt_name) or "") if prompt_name else ""
    ignored: list[str] = []
    if raw_prompt:
        given[prompt_name], ignored = filter_prompt(resources, raw_prompt, user, domain)
    resolved = resolve_parameters(template, given, user.id)
    graph = render_graph(template, resolved)
    typed = resolved.typed
    batch = batch_parameter(template)
    count = int(typed.get(batch.name, 1)) if batch is not None and template.mtype == "image" else 1
    if count > template.max_batch_size:
        raise BadRequest(f"Parameter '{batch.name}' must be at most {template.max_batch_size}.")
    tier = tiers.tier_of(user)
    limit = template.max_concurrent[min(tier, len(template.max_concurrent) - 1)]
    plan = RunPlan(
        owner_id=user.id, domain=domain, user_email=getattr(user, "email", None), template=template,
        resolved=resolved, graph=graph, generator_version="2", queue_kind="wf", queue_base=template.identifier,
        priority=priority_for(user), concurrency_limit=concurrency_cap(user, limit),
        concurrency_filter={"workflow_template_name": template.identifier, "generator_version": "2"},
        concurrency_label=f"workflow template '{template.identifier}'", count=count,
        folder_id=body.get("folderID"), ignored_words=ignored,
        item_params=_item_params(template, typed, raw_prompt, model_name=value_of(template, typed, "modelName")),
    )
    state, items, _position = start_run(resources, plan)
    return {"workflowId": state.public_id, "itemIds": [i.id for i in items]}


def _item_params(template: WorkflowTemplate, typed: dict, raw_prompt: str, model_name: Any = None,
                 **extra: Any) -> dict:
    """The Item fields that describe how it is made, from the resolved parameters (found
    through the parameters' option names, as the body fields bind)."""
    def value(option: str, fallback: str | None = None) -> Any:
        targets = bound_parameters(template, option)
        return typed.get(targets[0].name) if targets else typed.get(fallback) if fallback else None

    def number(option: str, kind):
        found = value(option)
        return kind(found) if isinstance(found, (int, float)) and not isinstance(found, bool) else None

    params: dict[str, Any] = {
        "prompt": raw_prompt, "filtered_prompt": value("prompt"),
        "negprompt": value("negprompt") or None, "filtered_negprompt": value("negprompt") or None,
        "seed": number("seed", int), "steps": number("steps", int), "cfgscale": number("cfgscale", float),
        "sampler": value("sampler", "Sampler"),
        "model_name": str(model_name) if model_name is not None else None,
    }
    lora_params, strength_params = bound_parameters(template, "lora"), bound_parameters(template, "lora_strength")
    loras = [(typed.get(p.name), typed.get(strength_params[i].name, 1.0) if i < len(strength_params) else 1.0)
             for i, p in enumerate(lora_params) if typed.get(p.name)]
    if loras:
        params["lora"] = [str(name) for name, _ in loras]
        params["lora_strength"] = [float(s) for _, s in loras]
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}
