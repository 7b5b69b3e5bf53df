"""The life of a run (a WorkflowState): the only module that writes one.

queued -> running -> completed | error | cancelled. A worker *claims* a run with one
conditional update (queued, or running with a lapsed lease -> running, leased to it), so two
workers never run it at once; every later write of that worker is conditioned on still
holding it (``worker_name``), so a worker that lost its lease writes nothing. Ending a run
ends the state first, then its Items (through ``services.items``, idempotent): a reader that
sees a finished Item then always sees its run ended too (the Item is read first), never a
finished Item under a running run.

Run events (``publish_run_event``) go out on one Redis pub/sub channel as JSON
``{"workflowStateId", "workflowId", "kind", ...}``, ``kind`` one of ``cancel_requested``,
``started``, ``completed``, ``failed``, ``cancelled``; workers listen for
``cancel_requested`` so a cancel reaches ComfyUI at once instead of at their next look.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

import redis
from mongoengine.queryset.visitor import Q

from ..models.base import iso, utcnow
from ..models.workflow import WorkflowState
from . import events
from . import items as items_service

log = logging.getLogger("aimg.runs")

EVENTS_CHANNEL = "aimg:run-events"
CANCELLED_MESSAGE = items_service.CANCELLED_MESSAGE
WAITING_FOR_SERVER = "waiting for a generation server"


def _line(text: str) -> str:
    return f"{iso(utcnow())} {text}"


def publish_run_event(connection: redis.Redis, state: WorkflowState, kind: str, items: list | None = None,
                      **data: Any) -> None:
    """Tell every listener (workers, event streams) that ``kind`` happened to a run.
    Best effort: a lost event is caught by the workers' lease renewal. ``items``: the run's
    Items as the caller just left them (``events.ItemView``), so the owner's events need no
    read of them."""
    message = {"workflowStateId": state.id, "workflowId": state.public_id, "kind": kind, **data}
    try:
        connection.publish(EVENTS_CHANNEL, json.dumps(message, separators=(",", ":")))
    except redis.RedisError:
        log.warning("could not publish a run event", extra={"workflowStateId": state.id, "kind": kind})
    if kind in _OWNER_KINDS:
        # The owner's own stream (GET /events): what getItemStatus now says of each Item.
        events.publish_items(connection, items or state.item_ids, _OWNER_KINDS[kind])


# run event -> the owner's event kind (None: from each Item's status)
_OWNER_KINDS = {"started": "started", "completed": None, "failed": None, "cancelled": None}


# --- created by the API ---------------------------------------------------------------------


def create(**fields: Any) -> WorkflowState:
    """A new queued run (``fields`` are WorkflowState fields)."""
    state = WorkflowState(state="queued", log=[_line("queued")], **fields)
    state.save(force_insert=True)
    return state


def not_enqueued(state: WorkflowState, message: str) -> None:
    """The queue refused the run: nothing will ever run it."""
    WorkflowState.objects(id=state.id, state="queued").update_one(
        set__state="error", set__error_message=message, set__end_time=utcnow(), push__log=_line(f"failed: {message}"))
    for item_id in state.item_ids:
        items_service.fail_item(item_id, message)


def cancel_queued(state: WorkflowState, connection: redis.Redis | None = None) -> bool:
    """End a run that no worker took yet (its job already left the queue)."""
    if not WorkflowState.objects(id=state.id, state="queued").update_one(
            set__state="cancelled", set__error_message=CANCELLED_MESSAGE, set__end_time=utcnow(),
            set__status_message=None, push__log=_line("cancelled while queued")):
        return False
    for item_id in state.item_ids:
        items_service.cancel_item(item_id)
    if connection is not None:
        publish_run_event(connection, state, "cancelled")
    return True


def request_cancel(connection: redis.Redis, state: WorkflowState) -> bool:
    """Ask the worker holding a run to stop it; it interrupts ComfyUI and cancels the run."""
    if not WorkflowState.objects(id=state.id, state__in=("queued", "running")).update_one(
            set__cancel_requested=True, push__log=_line("cancel requested")):
        return False
    publish_run_event(connection, state, "cancel_requested")
    return True


# --- driven by a worker ---------------------------------------------------------------------


def claim(state_id: str, worker: str, lease_s: float) -> WorkflowState | None:
    """Take the run for ``worker`` (a fresh one, or one whose worker's lease lapsed); the
    state as claimed, or None when it is not to be run by this worker."""
    now = utcnow()
    updates = dict(set__state="running", inc__attempts=1, set__lease_until=now + dt.timedelta(seconds=lease_s),
                   set__worker_name=worker, push__log=_line("picked up by a worker"))
    state = WorkflowState.objects(id=state_id, state="queued", start_time=None).modify(
        new=True, set__start_time=now, **updates)
    if state is None:
        state = WorkflowState.objects(
            Q(id=state_id) & (Q(state="queued") | Q(state="running", lease_until__lt=now))).modify(new=True, **updates)
    return state


def renew(state_id: str, worker: str, lease_s: float) -> bool:
    """Extend the worker's lease; False when the run is no longer its to run or a cancel
    was asked (one command while all is well)."""
    if WorkflowState.objects(id=state_id, worker_name=worker, state="running", cancel_requested=False).update_one(
            set__lease_until=utcnow() + dt.timedelta(seconds=lease_s)):
        return True
    return False


def lapse_lease(state_id: str, worker: str) -> None:
    """The worker cannot go on with the run (Redis away): its lease lapses now, so the reaper
    queues it again as soon as it can, and the next worker resumes the same prompt."""
    WorkflowState.objects(id=state_id, worker_name=worker, state="running").update_one(set__lease_until=utcnow())


@dataclass(frozen=True)
class Submission:
    """Where a run was submitted, with its log line stamped when it was (the write may come
    later, folded into the run's next one)."""

    server: str
    prompt_id: str
    line: str


def submission(server: str, prompt_id: str) -> Submission:
    # The log is the user's (getWorkflowStatus): servers stay unnamed there; ``comfy_server``
    # and the process log keep the address for operators.
    return Submission(server, prompt_id, _line(f"submitted to a generation server as prompt {prompt_id}"))


def submitted(state_id: str, worker: str, where: Submission) -> None:
    WorkflowState.objects(id=state_id, worker_name=worker).update_one(**_submitted_updates(where))


def _submitted_updates(where: Submission | None, lines: list[str] = ()) -> dict[str, Any]:
    """The writes of ``submitted`` (None when written already) and ``lines`` to append: a
    worker folds ``submitted`` into its next write of the run instead of a write of its own."""
    updates: dict[str, Any] = {}
    lines = list(lines)
    if where is not None:
        updates.update(set__comfy_server=where.server, set__prompt_id=where.prompt_id, set__status_message=None)
        lines.insert(0, where.line)
    if lines:
        updates["push_all__log"] = lines
    return updates


def retrying(state: WorkflowState, worker: str, lines: list[str], where: Submission | None = None) -> int:
    """A server failed the run and it will be submitted again: that submission counts as an
    attempt (``attempts``, bounded by ``comfyui_max_attempts``), in the same write as the
    log line saying why. The run's attempts now (this worker holds it, so it counts alone)."""
    WorkflowState.objects(id=state.id, worker_name=worker).update_one(
        inc__attempts=1, **_submitted_updates(where, lines))
    state.attempts = (state.attempts or 0) + 1
    return state.attempts


def waiting(state_id: str, worker: str, message: str | None, note: str | None = None) -> None:
    """Show (``message``) or clear (None) why a claimed run is not on a GPU yet."""
    updates: dict[str, Any] = {"set__status_message": message}
    if note:
        updates["push__log"] = _line(note)
    WorkflowState.objects(id=state_id, worker_name=worker).update_one(**updates)


def log_line(text: str) -> str:
    """A line of a run's log, stamped now (for ``progress``/``complete`` to write later)."""
    return _line(text)


def started(state: WorkflowState, connection: redis.Redis | None = None, items: list | None = None) -> None:
    """ComfyUI began executing the run: its Items are running. The run's own log line for it
    is written with the next write of the run (``progress`` or ``complete``), not apart.
    ``items``: the Items as now running (``events.ItemView``), for the events."""
    items_service.mark_started(state.item_ids)
    if connection is not None:
        publish_run_event(connection, state, "started", items=items)


def progress(state: WorkflowState, worker: str, fraction: float, lines: list[str] = (),
             connection: redis.Redis | None = None, where: Submission | None = None) -> None:
    """The run's progress (and its Items'), with log lines (``log_line``) to append, and
    ``where`` it was submitted when that is not written yet (``submitted``)."""
    updates: dict[str, Any] = {"set__progress": fraction, **_submitted_updates(where, lines)}
    items_service.mark_running(state.item_ids, fraction)
    WorkflowState.objects(id=state.id, worker_name=worker).update_one(**updates)
    if connection is not None:  # the owner's stream only: workers have no use for progress
        events.publish_items(connection, state.item_ids, "progress")


def complete(state: WorkflowState, worker: str, output_files: list[dict], produced: int,
             lines: list[str], connection: redis.Redis | None = None, where: Submission | None = None,
             end_items: Callable[[], list] | None = None) -> str:
    """The worker stored the ``produced`` main outputs: end the run (with ``where`` it ran,
    when ``submitted`` was not written, and ``lines`` not written yet), then its Items
    (``end_items`` completes them and returns them as ``started`` takes them, for the
    events). "completed" when it did; "cancelled" when a cancel was asked meanwhile (its
    owner was told the run is cancelled: it is, outputs and all); "elsewhere" when the run is
    no longer this worker's."""
    message = None if produced else "ComfyUI produced no output."
    ended = WorkflowState.objects(id=state.id, worker_name=worker, state="running", cancel_requested=False).update_one(
        set__state="completed" if produced else "error", set__error_message=message, set__progress=1.0,
        set__end_time=utcnow(), set__output_files=output_files, set__lease_until=None,
        **{"set__status_message": None,
           **_submitted_updates(where, [*lines, _line(f"completed: {produced} output(s)")])})
    if not ended and fail(state, worker, CANCELLED_MESSAGE, cancelled=True, connection=connection, where=where,
                          lines=lines):
        return "cancelled"
    # The Items even when the run is no longer ours: completion is idempotent, and a run
    # ended by someone else (cancelled) has no open Item left to complete.
    items = end_items() if end_items is not None else None
    if ended and connection is not None:
        publish_run_event(connection, state, "completed" if produced else "failed", items=items)
    return "completed" if ended else "elsewhere"


def fail(state: WorkflowState, worker: str, message: str, cancelled: bool = False,
         connection: redis.Redis | None = None, where: Submission | None = None, lines: list[str] = ()) -> bool:
    """End a claimed run (and its open Items) as failed, or as cancelled; nothing when the
    run is no longer this worker's (another took it over after its lease lapsed). ``where``
    and ``lines`` (not written yet, e.g. "started"): as ``complete`` takes them. True when it
    ended the run."""
    ended = WorkflowState.objects(id=state.id, worker_name=worker, state="running").update_one(
        set__state="cancelled" if cancelled else "error", set__error_message=message, set__end_time=utcnow(),
        set__lease_until=None,
        **{"set__status_message": None, **_submitted_updates(where, [*lines, _line(f"failed: {message}")])})
    if not ended:
        return False
    end_open_items(state.item_ids, message, cancelled)
    if connection is not None:
        publish_run_event(connection, state, "cancelled" if cancelled else "failed", errorMessage=message)
    return True


def end_open_items(item_ids: list[str], message: str, cancelled: bool = False) -> None:
    """The still open Items of a run that failed (``message``) or was cancelled, ended alike."""
    for item_id in item_ids:
        if cancelled:
            items_service.cancel_item(item_id)
        else:
            items_service.fail_item(item_id, message)


def cancel_requested(state_id: str) -> bool:
    return bool(WorkflowState.objects(id=state_id, cancel_requested=True).count())


def current(state_id: str) -> WorkflowState | None:
    return WorkflowState.objects(id=state_id).first()


# --- runs whose worker died -----------------------------------------------------------------


def stale(limit: int = 100) -> list[WorkflowState]:
    return list(WorkflowState.objects(state="running", lease_until__lt=utcnow()).only(
        "id", "public_id", "queue_name", "lease_until").limit(limit))


def queued_before(cutoff: dt.datetime, limit: int = 100) -> list[WorkflowState]:
    """Runs still queued that were created before ``cutoff`` (the reaper checks that their
    queue still holds them)."""
    return list(WorkflowState.objects(state="queued", created_date__lt=cutoff).only(
        "id", "public_id", "queue_name").limit(limit))


def held_by_process(process: str) -> list[WorkflowState]:
    """The running runs whose worker is a slot of ``process`` (``host:pid``)."""
    return list(WorkflowState.objects(state="running", worker_name__startswith=f"{process}:").only(
        "id", "queue_name", "worker_name"))


def hand_back(state: WorkflowState, process: str) -> bool:
    """A stopping worker gives its run back: queued again with its lease released. Not a
    crash, so the attempt does not count towards ``generation_max_runs``."""
    return bool(WorkflowState.objects(id=state.id, state="running", worker_name=state.worker_name).update_one(
        set__state="queued", set__lease_until=None, set__worker_name=None, dec__attempts=1,
        push__log=_line("handed back by a stopping worker; queued again")))


def requeue(state: WorkflowState) -> bool:
    """Put a run whose worker died back to queued (once, however many reapers try)."""
    return bool(WorkflowState.objects(id=state.id, state="running", lease_until=state.lease_until).update_one(
        set__state="queued", set__lease_until=None, set__worker_name=None,
        push__log=_line("its worker stopped answering; queued again")))


def ended_with_open_items(cutoff: dt.datetime, limit: int = 100) -> list[tuple[WorkflowState, list[str]]]:
    """Runs that ended before ``cutoff`` while Items of theirs are still open: the
    worker died between ending the run and ending its Items (the run is written first, so
    no reader sees a finished Item under a running run). With the open Items' ids."""
    from ..models.item import Item

    open_items: dict[str, list[str]] = {}
    for item in Item.objects(status__in=list(items_service.OPEN), created_date__lt=cutoff).only(
            "id", "job_id").limit(limit):
        if item.job_id:
            open_items.setdefault(item.job_id, []).append(item.id)
    if not open_items:
        return []
    ended = WorkflowState.objects(id__in=list(open_items), state__in=["completed", "error", "cancelled"],
                                  end_time__lt=cutoff)
    return [(state, open_items[state.id]) for state in ended]
