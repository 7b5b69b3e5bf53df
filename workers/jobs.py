"""RQ job functions of generation, and the requeueing of runs whose worker died.

A run is claimed with one conditional update (queued, or running with a lapsed lease ->
running, leased to this worker), so two workers never run it at once; completion goes
through ``services.items.complete_item`` (idempotent) and output files get ids derived from
their Item, so a run that is taken over after a crash completes nothing twice and stores
every file once.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import os
import socket
import threading
from typing import Any

import redis
from mongoengine.queryset.visitor import Q
from PIL import Image

from aimg_app import metrics, queueing
from aimg_app.errors import Conflict
from aimg_app.models.base import iso, utcnow
from aimg_app.models.file import StoredFile
from aimg_app.models.workflow import WorkflowState
from aimg_app.services import files as files_service
from aimg_app.services import items as items_service
from aimg_app.services import reports as reports_service

from .comfy import Cancelled, ComfyError, ComfyPool, ComfyRun, RunOutputs, interrupt_now

log = logging.getLogger("aimg.worker.jobs")

CANCELLED_MESSAGE = items_service.CANCELLED_MESSAGE
INTERNAL_MESSAGE = "Generation failed because of an internal error. Please try again."

_resources = None
_lock = threading.Lock()


def set_resources(resources) -> None:
    """The worker process's Resources (``aimg worker`` sets it; tests set the app's)."""
    global _resources
    _resources = resources


def resources():
    global _resources
    with _lock:
        if _resources is None:  # a plain ``rq worker`` process: build them from the environment
            from aimg_app.config import load_settings
            from aimg_app.resources import Resources

            _resources = Resources(load_settings())
            _resources.connect_mongo()
    return _resources


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _log_line(text: str) -> str:
    return f"{iso(utcnow())} {text}"


# --- the job ------------------------------------------------------------------------------


def run_workflow(state_id: str) -> str:
    """Run one WorkflowState on ComfyUI and complete (or fail) its Items."""
    res = resources()
    settings = res.settings
    me = worker_name()
    now = utcnow()
    lease = dt.timedelta(seconds=settings.generation_lease_s)
    claimed = WorkflowState.objects(
        Q(id=state_id) & (Q(state="queued") | Q(state="running", lease_until__lt=now))
    ).update_one(set__state="running", set__is_started=True, inc__attempts=1, set__lease_until=now + lease,
                 set__worker_name=me, push__log=_log_line("picked up by a worker"))
    if not claimed:
        return "skipped: not queued, or another worker holds it"
    WorkflowState.objects(id=state_id, start_time=None).update_one(set__start_time=now)
    state = WorkflowState.objects(id=state_id).first()
    if state.cancel_requested:
        _finish_failed(state, me, CANCELLED_MESSAGE, cancelled=True)
        return "cancelled"
    if state.attempts > settings.generation_max_runs:
        _finish_failed(state, me, f"Generation stopped after {settings.generation_max_runs} interrupted attempts.")
        return "gave up"
    items_service.mark_running(state.item_ids, 0.0)
    try:
        with metrics.phase("comfyui"):  # submit included; "submit" is also observed alone
            outputs = asyncio.run(_run(res, state, me))
        with metrics.phase("storing"):
            _store_outputs(res, state, me, outputs)
        return "completed"
    except ComfyError as exc:
        _finish_failed(state, me, exc.message, cancelled=isinstance(exc, Cancelled))
        return "failed"
    except redis.RedisError:
        # Redis went away mid-run (a restart, a failover): not the run's fault. The lease
        # lapses now, so a reaper queues the run again once Redis is back, and the next
        # worker resumes the same ComfyUI prompt.
        WorkflowState.objects(id=state_id, worker_name=me, state="running").update_one(set__lease_until=utcnow())
        log.warning("Redis unavailable during a run; it will be queued again", extra={"workflowStateId": state_id})
        return "interrupted: Redis unavailable"
    except Exception as exc:
        # RQ's own hard timeout (or anything unexpected): stop the GPU work, fail cleanly.
        current = WorkflowState.objects(id=state_id).only("comfy_server", "prompt_id").first()
        if current and current.comfy_server and current.prompt_id:
            interrupt_now(current.comfy_server, current.prompt_id)
        from rq.timeouts import JobTimeoutException

        message = (f"Generation timed out after {settings.generation_job_timeout_s} s and was stopped."
                   if isinstance(exc, JobTimeoutException) else INTERNAL_MESSAGE)
        log.exception("generation job failed", extra={"workflowStateId": state_id})
        _finish_failed(state, me, message)
        raise


async def _run(res, state: WorkflowState, me: str) -> RunOutputs:
    settings = res.settings
    pool = ComfyPool(settings.comfyui_urls, res.redis, health_ttl_s=settings.comfyui_health_ttl_s,
                     http_timeout_s=settings.comfyui_http_timeout_s)
    cancel = {"requested": False}
    last = {"progress": -1.0, "at": 0.0}
    loop = asyncio.get_running_loop()

    async def on_progress(fraction: float, note: str | None) -> None:
        now = loop.time()
        # Progress messages come per sampler step; write at most ~4 a second.
        if note is None and (now - last["at"] < 0.25 or abs(fraction - last["progress"]) < 0.01):
            return
        last.update(progress=fraction, at=now)
        await asyncio.to_thread(_record_progress, state, me, fraction, note)

    started = loop.time()

    async def on_submitted(server: str, prompt_id: str) -> None:
        metrics.observe_phase("submit", loop.time() - started)
        await asyncio.to_thread(WorkflowState.objects(id=state.id, worker_name=me).update_one,
                                set__comfy_server=server, set__prompt_id=prompt_id,
                                push__log=_log_line(f"submitted to {server} as prompt {prompt_id}"))

    async def keep_lease() -> None:
        lease = dt.timedelta(seconds=settings.generation_lease_s)
        every = max(0.2, min(settings.generation_lease_s / 3, 2.0))
        while True:
            await asyncio.sleep(every)
            current = await asyncio.to_thread(_renew, state.id, me, lease)
            if current is None or current.cancel_requested:
                cancel["requested"] = True

    uploads = []
    for upload in state.uploads:
        content = files_service.read_file(res.files, upload["file_id"])
        ext = (content.file_name.rsplit(".", 1)[-1] if "." in content.file_name else "png")[:5]
        uploads.append((upload["marker"], f"{state.id}-{upload['file_id']}.{ext}", content.data))
    run = ComfyRun(pool=pool, graph=json.loads(state.graph_json), client_id=state.id,
                   timeout_s=settings.comfyui_prompt_timeout_s, max_attempts=settings.comfyui_max_attempts,
                   on_progress=on_progress, on_submitted=on_submitted, cancel_requested=lambda: cancel["requested"],
                   uploads=uploads,
                   resume=(state.comfy_server, state.prompt_id) if state.comfy_server and state.prompt_id else None)
    renewer = asyncio.ensure_future(keep_lease())
    try:
        return await run.run()
    finally:
        renewer.cancel()


def _renew(state_id: str, me: str, lease: dt.timedelta):
    WorkflowState.objects(id=state_id, worker_name=me, state="running").update_one(set__lease_until=utcnow() + lease)
    return WorkflowState.objects(id=state_id).only("cancel_requested", "worker_name").first()


def _record_progress(state: WorkflowState, me: str, fraction: float, note: str | None) -> None:
    updates: dict[str, Any] = {"set__progress": fraction}
    if note:
        updates["push__log"] = _log_line(note)
    items_service.mark_running(state.item_ids, fraction)
    WorkflowState.objects(id=state.id, worker_name=me).update_one(**updates)


# --- outcome ------------------------------------------------------------------------------


def _store(res, *, file_id: str, data: bytes, content_type: str, file_name: str, state: WorkflowState):
    """Store one output under a deterministic id; a run taken over reuses what is there."""
    existing = StoredFile.objects(id=file_id).first()
    if existing is not None:
        return existing
    try:
        return files_service.store_file(res.files, data=data, file_name=file_name, content_type=content_type,
                                        domain=state.domain, file_id=file_id,
                                        owner_id=None if state.user_id.startswith("session:") else state.user_id,
                                        created_by="generation",
                                        custom_metadata={"workflowId": state.public_id})
    except Conflict:
        return StoredFile.objects(id=file_id).first()


def _size(data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except Exception:  # noqa: BLE001 - a non-image output has no size
        return 0, 0


def _url(res, file_id: str) -> str:
    return f"{res.settings.public_base_url}/getFile?id={file_id}"


def _ext(name: str, content_type: str) -> str:
    if "." in name:
        return name.rsplit(".", 1)[-1].lower()[:5]
    return (content_type.split("/")[-1] or "bin")[:5]


def _store_outputs(res, state: WorkflowState, me: str, outputs: RunOutputs) -> None:
    main = outputs.files.get(state.main_output_node or "") if state.main_output_node else None
    if main is None:  # a template without a declared output node: every image, in node order
        main = [f for node in sorted(outputs.files, key=lambda n: (len(n), n)) for f in outputs.files[node]]
    frames = outputs.files.get(state.frames_output_node or "", []) if state.frames_output_node else []
    output_files: list[dict] = []
    completed = 0
    for index, item_id in enumerate(state.item_ids):
        if index >= len(main):
            items_service.fail_item(item_id, "ComfyUI produced fewer outputs than requested.")
            continue
        data, content_type, name = main[index]
        ext = _ext(name, content_type)
        record = _store(res, file_id=f"{item_id}.{ext}", data=data, content_type=content_type,
                        file_name=f"{item_id}.{ext}", state=state)
        width, height = _size(data)
        frame_entries = []
        if state.mtype == "video":
            for number, (fdata, ftype, fname) in enumerate(frames):
                fext = _ext(fname, ftype)
                frame = _store(res, file_id=f"{item_id}-frame-{number:04d}.{fext}", data=fdata, content_type=ftype,
                               file_name=f"{item_id}-frame-{number:04d}.{fext}", state=state)
                frame_entries.append({"frame_number": number, "frame_count": len(frames),
                                      "url": _url(res, frame.id), "file_id": frame.id})
        output_files.append({"fileName": record.file_name, "downloadURL": _url(res, record.id), "isMainOutput": True,
                             "width": width, "height": height, "type": record.content_type, "fileId": record.id})
        output_files += [{"fileName": f["file_id"], "downloadURL": f["url"], "isMainOutput": False,
                          "width": width, "height": height, "type": "image/png", "note": f"frame {f['frame_number']}",
                          "fileId": f["file_id"]} for f in frame_entries]
        if items_service.complete_item(item_id, url=_url(res, record.id), file_id=record.id, width=width,
                                       height=height, frames=frame_entries or None):
            completed += 1
            # System report queues (e.g. the prompt filter) look at every new Item once.
            reports_service.review_item(res.report_queues, item_id)
    produced = bool(main)
    WorkflowState.objects(id=state.id, worker_name=me, state="running").update_one(
        set__state="completed" if produced else "error", set__is_complete=produced, set__is_error=not produced,
        set__error_message=None if produced else "ComfyUI produced no output.", set__progress=1.0,
        set__end_time=utcnow(), set__output_files=output_files, set__lease_until=None,
        push__log=_log_line(f"completed on {outputs.server}: {len(main)} output(s)"))


def _finish_failed(state: WorkflowState, me: str, message: str, cancelled: bool = False) -> None:
    for item_id in state.item_ids:
        if cancelled:
            items_service.cancel_item(item_id)
        else:
            items_service.fail_item(item_id, message)
    WorkflowState.objects(id=state.id, worker_name=me, state="running").update_one(
        set__state="cancelled" if cancelled else "error", set__is_error=True, set__error_message=message,
        set__end_time=utcnow(), set__lease_until=None, push__log=_log_line(f"failed: {message}"))


# --- runs whose worker died ---------------------------------------------------------------


def requeue_stale_runs(res, limit: int = 100) -> list[str]:
    """Queue again (at the front) every running state whose lease lapsed: its worker died.
    Each is claimed with a conditional update, so many reapers requeue it once."""
    requeued = []
    now = utcnow()
    for state in WorkflowState.objects(state="running", lease_until__lt=now).only(
            "id", "queue_name", "lease_until").limit(limit):
        claimed = WorkflowState.objects(id=state.id, state="running", lease_until=state.lease_until).update_one(
            set__state="queued", set__lease_until=None, set__worker_name=None,
            push__log=_log_line("its worker stopped answering; queued again"))
        if claimed:
            from rq import Queue
            from rq.job import Job

            try:  # the enqueuing request's id stays with the run
                meta = Job.fetch(state.id, connection=res.redis).meta
            except Exception:  # noqa: BLE001 - expired or never there
                meta = {}
            Queue(state.queue_name, connection=res.redis).enqueue(
                queueing.JOB_FUNCTION, state.id, job_id=state.id, job_timeout=res.settings.generation_job_timeout_s,
                result_ttl=3600, failure_ttl=7 * 86400, at_front=True, description=f"workflow {state.id} (requeued)",
                meta=meta)
            requeued.append(state.id)
            log.warning("requeued a run whose worker died", extra={"workflowStateId": state.id})
    return requeued
