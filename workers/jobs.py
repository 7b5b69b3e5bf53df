"""Generation jobs: a worker's slots, the run of one WorkflowState, pushed cancels, and
the requeueing of runs whose worker died.

Every change of a run goes through ``services.runs`` (claimed with one conditional update,
so two workers never run it at once); completion goes through
``services.items.complete_item`` (idempotent) and output files get ids derived from their
Item, so a run that is taken over after a crash completes nothing twice and stores every
file once.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import io
import json
import logging
import os
import socket
import threading
import time

import redis
from PIL import Image

from aimg_app import metrics, queueing
from aimg_app.errors import Conflict
from aimg_app.jsonlog import request_id_var
from aimg_app.models.base import utcnow
from aimg_app.models.file import StoredFile
from aimg_app.models.workflow import WorkflowState
from aimg_app.services import files as files_service
from aimg_app.services import items as items_service
from aimg_app.services import reports as reports_service
from aimg_app.services import eta, runs
from aimg_app.services.events import ItemView

from .comfy import Cancelled, ComfyError, ComfyPool, ComfyRun, RunOutputs, interrupt_now

log = logging.getLogger("aimg.worker.jobs")

CANCELLED_MESSAGE = items_service.CANCELLED_MESSAGE
# Where a run was submitted is written with the run's next write (progress, completion),
# or after this long when none came: a short run costs no write of its own for it, and a
# worker that dies before it is written only costs a second submission (completion stays
# exactly once: idempotent Item completion, file ids derived from the Item).
SUBMITTED_WRITE_AFTER_S = 1.0
# That a run began executing is written this long after ComfyUI said so, unless it ended
# before: then its completion (or failure) carries the start, and the run costs no write
# for it (the Items go from queued to their end; a user cannot tell a shorter "running").
STARTED_WRITE_AFTER_S = 0.25
INTERNAL_MESSAGE = "Generation failed because of an internal error. Please try again."
FEWER_OUTPUTS = "ComfyUI produced fewer outputs than requested."
# A run queued this long ago that its queue no longer holds is queued again by the reaper
# (the API queues a run a few milliseconds after creating it).
LOST_QUEUED_AFTER_S = 30.0
# Items still open this long after their run ended are ended by the reaper (their worker died
# in between; it ends them milliseconds after the run).
OPEN_ITEMS_AFTER_S = 10.0

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


# --- pushed cancels -----------------------------------------------------------------------

_cancels: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
_listener: tuple[threading.Thread, object] | None = None  # (thread, the connection it listens on)


def _signal_cancel(state_id: str) -> None:
    with _lock:
        entry = _cancels.get(state_id)
    if entry is not None:
        loop, event = entry
        with contextlib.suppress(RuntimeError):  # the run just ended and its loop closed
            loop.call_soon_threadsafe(event.set)


def ensure_cancel_listener(connection) -> None:
    """One thread per process that hears ``cancel_requested`` run events and stops the run
    at once (the lease renewal is the backstop for an event that was lost)."""
    global _listener
    with _lock:
        if _listener is not None and _listener[0].is_alive() and _listener[1] is connection:
            return
        ready = threading.Event()

        def _listen():
            while True:
                try:
                    pubsub = connection.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(runs.EVENTS_CHANNEL)
                    ready.set()
                    for message in pubsub.listen():
                        event = json.loads(message["data"])
                        if event.get("kind") == "cancel_requested":
                            _signal_cancel(event["workflowStateId"])
                except Exception:  # noqa: BLE001 - Redis went away: subscribe again
                    if _listener is None or _listener[1] is not connection:
                        return  # replaced by a listener on the current connection
                    log.debug("run events listener lost Redis; reconnecting")
                    ready.set()
                    time.sleep(1.0)

        thread = threading.Thread(target=_listen, name="aimg-run-events", daemon=True)
        _listener = (thread, connection)
        thread.start()
    ready.wait(5)


# --- the job ------------------------------------------------------------------------------

_local = threading.local()


def _thread_loop() -> asyncio.AbstractEventLoop:
    """One event loop per thread, kept across jobs (its helper threads too)."""
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop


_job = threading.local()  # the queue of the run this thread is on, for the jobs metric


class _Release:
    """Releases a slot once, whichever comes first: ComfyUI has executed the run, or the job ended."""

    def __init__(self, semaphore: threading.BoundedSemaphore):
        self._semaphore, self._done = semaphore, False
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._semaphore.release()


def run_workflow(state_id: str, executed=None) -> str:
    """Run one WorkflowState on ComfyUI and complete (or fail) its Items. ``executed`` is
    called (from any thread) once ComfyUI is done with the run, before its outputs are stored."""
    _job.queue, outcome = "unknown", "error"
    try:
        result = _run_workflow(state_id, executed)
        outcome = result.split(":")[0].split()[0]
        log.info("Job OK (%s): %s", state_id, result, extra={"workflowStateId": state_id})
        return result
    finally:
        metrics.JOBS.labels(_job.queue, outcome).inc()


def _run_workflow(state_id: str, executed=None) -> str:
    res = resources()
    settings = res.settings
    me = worker_name()
    ensure_cancel_listener(res.redis)
    state = runs.claim(state_id, me, settings.generation_lease_s)
    if state is None:
        return "skipped: not queued, or another worker holds it"
    _job.queue = state.queue_name or "unknown"
    log.info("picked up the run (attempt %s)", state.attempts, extra={"workflowStateId": state_id})
    if state.attempts == 1 and state.created_date is not None:  # first pick-up: the wait since it was queued
        metrics.observe_phase("queue_wait", (utcnow() - state.created_date).total_seconds())
    state.deferred_log = []  # log lines written with the run's next write
    state.executing_since = None  # when ComfyUI began executing it (this attempt)
    state.start_write = None  # the write of "started" (``_StartWrite``), once ComfyUI began executing it
    if state.cancel_requested:
        runs.fail(state, me, CANCELLED_MESSAGE, cancelled=True, connection=res.redis)
        return "cancelled"
    if state.attempts > settings.generation_max_runs:
        runs.fail(state, me, f"Generation stopped after {state.attempts - 1} attempts: each was interrupted "
                             "(a worker or a generation server stopped). Please try again.", connection=res.redis)
        return "gave up"
    try:
        try:
            with metrics.phase("comfyui"):  # submit included
                outputs = _thread_loop().run_until_complete(_run(res, state, me, executed))
        finally:
            if state.start_write is not None:  # before the run's end is written
                state.start_write.settle()
        if state.executing_since is not None:
            eta.record(res, state, time.monotonic() - state.executing_since)
        with metrics.phase("storing"):
            outcome = _store_outputs(res, state, me, outputs)
        return "cancelled" if outcome == "cancelled" else "completed"
    except ComfyError as exc:
        runs.fail(state, me, exc.message, cancelled=isinstance(exc, Cancelled), connection=res.redis,
                  where=_take_unwritten(state.id), lines=state.deferred_log)
        return "failed"
    except redis.RedisError:
        # Redis went away mid-run (a restart, a failover): not the run's fault. The lease
        # lapses now, so a reaper queues the run again once Redis is back, and the next
        # worker resumes the same ComfyUI prompt.
        _take_unwritten(state_id)
        runs.lapse_lease(state_id, me)
        log.warning("Redis unavailable during a run; it will be queued again", extra={"workflowStateId": state_id})
        return "interrupted: Redis unavailable"
    except Exception as exc:
        # RQ's own hard timeout (or anything unexpected): stop the GPU work, fail cleanly.
        current = runs.current(state_id)
        if current and current.comfy_server and current.prompt_id:
            interrupt_now(current.comfy_server, current.prompt_id)
        from rq.timeouts import JobTimeoutException

        message = (f"Generation timed out after {settings.generation_job_timeout_s} s and was stopped."
                   if isinstance(exc, JobTimeoutException) else INTERNAL_MESSAGE)
        log.exception("generation job failed", extra={"workflowStateId": state_id})
        runs.fail(state, me, message, connection=res.redis, where=_take_unwritten(state.id), lines=state.deferred_log)
        raise


async def _run(res, state: WorkflowState, me: str, executed=None) -> RunOutputs:
    settings = res.settings
    pool = ComfyPool(settings.comfyui_urls, res.redis, health_ttl_s=settings.comfyui_health_ttl_s,
                     http_timeout_s=settings.comfyui_http_timeout_s)
    loop = asyncio.get_running_loop()
    cancel = asyncio.Event()
    with _lock:
        _cancels[state.id] = (loop, cancel)
    last = {"progress": -1.0, "at": 0.0}

    async def on_progress(fraction: float, note: str | None, started: bool = False) -> None:
        now = loop.time()
        if note:
            state.deferred_log.append(runs.log_line(note))
        if started:
            last["at"] = now  # a short run then costs no progress write at all
            state.executing_since = time.monotonic()
            views = [ItemView(id=item_id, user_id=state.user_id, status="running", mtype=state.mtype,
                              ignored_words=list(state.ignored_words or []), folder_id=state.folder_id)
                     for item_id in state.item_ids]
            if state.start_write is None:  # once per run: a retry's new start is no news to its owner
                state.start_write = _StartWrite(loop, lambda: runs.started(state, res.redis, views))
            return
        # Progress messages come per sampler step; write at most ~4 a second.
        if note is None and (now - last["at"] < 0.25 or abs(fraction - last["progress"]) < 0.01):
            return
        last.update(progress=fraction, at=now)
        if state.start_write is not None:  # the start goes first
            state.start_write.now()
            await asyncio.to_thread(state.start_write.wait)
        lines, state.deferred_log = state.deferred_log, []
        await asyncio.to_thread(runs.progress, state, me, fraction, lines, res.redis, _take_unwritten(state.id))

    started = loop.time()

    async def on_submitted(server: str, prompt_id: str) -> None:
        metrics.observe_phase("submit", loop.time() - started)
        with _lock:
            _unwritten[state.id] = (me, runs.submission(server, prompt_id))
        loop.call_later(SUBMITTED_WRITE_AFTER_S, lambda: asyncio.ensure_future(
            asyncio.to_thread(write_unwritten, state.id, prompt_id)))

    async def on_waiting(waiting: bool) -> None:
        await asyncio.to_thread(runs.waiting, state.id, me, runs.WAITING_FOR_SERVER if waiting else None,
                                f"no healthy generation server; waiting up to {settings.generation_server_wait_s:g} s"
                                if waiting else "a generation server is available again")

    async def keep_lease() -> None:
        every = max(0.2, min(settings.generation_lease_s / 3, 2.0))
        while True:
            await asyncio.sleep(every)
            if not await asyncio.to_thread(runs.renew, state.id, me, settings.generation_lease_s):
                if not await asyncio.to_thread(runs.cancel_requested, state.id):
                    run.abandoned = True  # no longer ours: stop following, leave the prompt running
                cancel.set()

    async def on_retry(server: str, message: str) -> int:
        # The next submission counts now, with the line that says why (no write of its own).
        line = runs.log_line(f"the generation server failed ({message}); trying again "
                             f"(attempt {state.attempts + 1} of {settings.comfyui_max_attempts})")
        lines, state.deferred_log = state.deferred_log, []
        return await asyncio.to_thread(runs.retrying, state, me, lines + [line], _take_unwritten(state.id))

    uploads = []
    for upload in state.uploads:
        content = files_service.read_file(res.files, upload["file_id"])
        ext = (content.file_name.rsplit(".", 1)[-1] if "." in content.file_name else "png")[:5]
        uploads.append((upload["marker"], f"{state.id}-{upload['file_id']}.{ext}", content.data))
    run = ComfyRun(pool=pool, graph=json.loads(state.graph_json), client_id=state.id,
                   timeout_s=settings.comfyui_prompt_timeout_s, max_attempts=settings.comfyui_max_attempts,
                   on_progress=on_progress, on_submitted=on_submitted, cancel=cancel, uploads=uploads,
                   resume=(state.comfy_server, state.prompt_id) if state.comfy_server and state.prompt_id else None,
                   wait_s=settings.generation_server_wait_s, on_waiting=on_waiting,
                   attempts=state.attempts, on_retry=on_retry, order=_epoch(state.start_time), on_executed=executed)
    renewer = asyncio.ensure_future(keep_lease())
    try:
        return await run.run()
    finally:
        renewer.cancel()
        with _lock:
            _cancels.pop(state.id, None)


# The "started" writes of this process's runs (a few at a time: one per run on ComfyUI).
_started_writes = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="aimg-started")


class _StartWrite:
    """The write that a run began executing: made ``STARTED_WRITE_AFTER_S`` later on a thread
    of its own (the run's messages are followed meanwhile), or at once when the run's next
    write is due; not made at all when the run ends first (its end carries the start). No
    later write or event of the run comes before it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, write):
        self._write, self._future = write, None
        self._timer = loop.call_later(STARTED_WRITE_AFTER_S, self.now)

    def now(self) -> None:
        """Make the write now, if not made yet (on the run's event loop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._future = _started_writes.submit(self._write)

    def wait(self) -> None:
        if self._future is None:
            return
        try:
            self._future.result(timeout=30)
        except Exception:  # noqa: BLE001 - completion writes the start it did not see (``complete_item``)
            log.warning("could not record that a run started")

    def settle(self) -> None:
        """The run ended (its event loop stopped): a write not due yet is not made; one made is waited for."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.wait()


def _epoch(when) -> float:
    """A stored (naive, UTC) date as epoch seconds; now when there is none."""
    return when.replace(tzinfo=datetime.timezone.utc).timestamp() if when is not None else time.time()


_unwritten: dict[str, tuple[str, runs.Submission]] = {}  # run id -> (worker, where) not written yet


def _take_unwritten(state_id: str) -> runs.Submission | None:
    """Where the run was submitted, if not written yet, for the caller's write to carry."""
    with _lock:
        entry = _unwritten.pop(state_id, None)
    return entry[1] if entry else None


def write_unwritten(state_id: str | None = None, prompt_id: str | None = None) -> None:
    """Write where runs were submitted (one run, if its prompt is still ``prompt_id``; or
    every run of this process, for a worker that hands its runs back)."""
    with _lock:
        ids = [state_id] if state_id else list(_unwritten)
        entries = [(i, _unwritten.pop(i)) for i in ids
                   if i in _unwritten and (prompt_id is None or _unwritten[i][1].prompt_id == prompt_id)]
    for run_id, (worker, where) in entries:
        try:
            runs.submitted(run_id, worker, where)
        except Exception:  # noqa: BLE001 - the run's next write or a second submission covers it
            log.warning("could not record where a run was submitted", extra={"workflowStateId": run_id})


# --- a worker's slots ---------------------------------------------------------------------


def _request_id_of(res, state_id: str) -> str | None:
    """The id of the request that queued the run: every log line of the job carries it."""
    from rq.job import Job

    try:
        return (Job.fetch(state_id, connection=res.redis).meta or {}).get("requestId")
    except Exception:  # noqa: BLE001 - an expired job hash: the lines go without it
        return None


def work_slots(res, queue_names: list[str], stop: threading.Event, *, slots: int | None = None,
               burst: bool = False) -> list[threading.Thread]:
    """Run jobs of ``queue_names`` (in that order) so that while one run executes on ComfyUI
    the next is already submitted to ComfyUI's own queue: the GPU never waits for our
    bookkeeping. ``slots`` = 1 + ``generation_prefetch`` runs of this process are on ComfyUI
    at once, which bounds the look-ahead (a priority job waits behind at most that many
    prefetched runs). A run gives its slot up as soon as ComfyUI has executed it, and its
    outputs are stored on a thread of its own, so the next run is taken while they are
    (twice as many threads as slots). ``burst``: a thread ends when the queues are empty.
    Returns the started threads."""
    set_resources(res)
    ensure_cancel_listener(res.redis)
    count = max(1, slots if slots is not None else 1 + res.settings.generation_prefetch)
    on_comfyui = threading.BoundedSemaphore(count)  # runs of this process on ComfyUI now

    process = worker_name().rsplit(":", 1)[0]
    beat = {"at": 0.0}

    def _heartbeat() -> None:
        # What the API reads as "a worker is alive"; at most every few seconds per process.
        now = time.monotonic()
        if now - beat["at"] >= 5.0:
            beat["at"] = now
            with contextlib.suppress(redis.RedisError):
                queueing.worker_heartbeat(res.redis, process, {"queues": queue_names,
                                                                "comfyui": list(res.settings.comfyui_urls)})

    def _slot():
        while not stop.is_set():
            if not on_comfyui.acquire(timeout=0.5):
                continue
            freed = _Release(on_comfyui)
            try:
                if not _one_job(freed):
                    return
            finally:
                freed()

    def _one_job(freed: "_Release") -> bool:
        """Take and run one job; False when this thread should end."""
        _heartbeat()
        try:
            state_id = queueing.take_next(res.redis, queue_names, timeout_s=0.2 if burst else 1.0)
        except Exception:  # noqa: BLE001 - Redis hiccup: look again shortly
            log.exception("taking the next generation job failed")
            stop.wait(1.0)
            return True
        if state_id is None:
            return not burst
        if stop.is_set():  # popped while stopping: back to the front, for another worker
            state = runs.current(state_id)
            if state is not None:
                queueing.enqueue_run(res.redis, state.queue_name, state_id,
                                     job_timeout=res.settings.generation_job_timeout_s, at_front=True)
            return False
        token = request_id_var.set(_request_id_of(res, state_id))
        try:
            run_workflow(state_id, executed=freed)
        except Exception:  # noqa: BLE001 - already failed cleanly and logged by run_workflow
            pass
        finally:
            request_id_var.reset(token)
            queueing.forget(res.redis, state_id)
        return True

    threads = [threading.Thread(target=_slot, name=f"aimg-slot-{n}", daemon=True) for n in range(2 * count)]
    for thread in threads:
        thread.start()
    return threads


# --- outcome ------------------------------------------------------------------------------


def _store(res, *, file_id: str, data: bytes, content_type: str, file_name: str, state: WorkflowState):
    """Store one output under a deterministic id; a run taken over reuses what is there."""
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


def _store_outputs(res, state: WorkflowState, me: str, outputs: RunOutputs) -> str:
    main = outputs.files.get(state.main_output_node or "") if state.main_output_node else None
    if main is None:  # a template without a declared output node: every image, in node order
        main = [f for node in sorted(outputs.files, key=lambda n: (len(n), n)) for f in outputs.files[node]]
    frames = outputs.files.get(state.frames_output_node or "", []) if state.frames_output_node else []
    output_files: list[dict] = []
    endings: list = []  # per Item: (record, width, height, frame entries), or None when no output came for it
    for index, item_id in enumerate(state.item_ids):
        if index >= len(main):
            endings.append(None)
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
        endings.append((record, width, height, frame_entries))

    def end_items() -> list:
        """The Items, once the run is ended (never a finished Item under a running run); as
        left here, for the owner's events (an id: read it back)."""
        views: list = []
        reviewing = any(queue.system for queue in res.report_queues)
        for item_id, ending in zip(state.item_ids, endings):
            if ending is None:
                message = FEWER_OUTPUTS
                failed = items_service.fail_item(item_id, message)
                views.append(ItemView(id=item_id, user_id=state.user_id, status="failed", mtype=state.mtype,
                                      ignored_words=list(state.ignored_words or []), error_message=message)
                             if failed and not state.folder_id else item_id)
                continue
            record, width, height, frame_entries = ending
            item = items_service.complete_item(item_id, url=_url(res, record.id), file_id=record.id, width=width,
                                               height=height, frames=frame_entries or None,
                                               started=state.start_time)
            views.append(item or item_id)  # as completed here; or, ended by someone else, as it is now
            if item and reviewing:  # system report queues (e.g. the prompt filter) look at every new Item once
                reports_service.review_item(res.report_queues, item)
        return views

    outcome = runs.complete(state, me, output_files, produced=len(main), lines=state.deferred_log,
                            connection=res.redis, where=_take_unwritten(state.id), end_items=end_items)
    if outcome == "cancelled":  # cancelled after ComfyUI was done: its outputs go with it
        for output in output_files:
            with contextlib.suppress(Exception):
                files_service.remove_file(res.files, output["fileId"])
    return outcome


# --- runs whose worker died ---------------------------------------------------------------


def _queue_again(res, state: WorkflowState) -> None:
    """Back at the front of its queue, under the id of the request that first queued it."""
    token = request_id_var.set(_request_id_of(res, state.id))
    try:
        queueing.enqueue_run(res.redis, state.queue_name, state.id,
                             job_timeout=res.settings.generation_job_timeout_s, at_front=True)
    finally:
        request_id_var.reset(token)


def requeue_stale_runs(res, limit: int = 100) -> list[str]:
    """Queue again (at the front) every running state whose lease lapsed: its worker died.
    Each is taken back with a conditional update, so many reapers requeue it once."""
    requeued = []
    for state in runs.stale(limit):
        if runs.requeue(state):
            _queue_again(res, state)
            requeued.append(state.id)
            log.warning("requeued a run whose worker died", extra={"workflowStateId": state.id})
    # A queued run whose job id its queue no longer holds (popped by a worker that lost Redis
    # before it could claim the run, or pushed just before Redis lost its last writes) would
    # wait for ever: queued again, once (a marker in Redis), at the front.
    for state in runs.queued_before(utcnow() - datetime.timedelta(seconds=LOST_QUEUED_AFTER_S), limit):
        if queueing.is_waiting(res.redis, state.queue_name, state.id):
            continue
        if not res.redis.set(f"aimg:requeued-lost:{state.id}", "1", nx=True, ex=int(LOST_QUEUED_AFTER_S)):
            continue
        _queue_again(res, state)
        requeued.append(state.id)
        log.warning("queued again a run its queue had lost", extra={"workflowStateId": state.id})
    for state, item_ids in runs.ended_with_open_items(utcnow() - datetime.timedelta(seconds=OPEN_ITEMS_AFTER_S),
                                                      limit):
        _end_items_of_ended_run(res, state, item_ids)
        log.warning("ended the Items of a run whose worker died after ending it",
                    extra={"workflowStateId": state.id})
    return requeued


def _end_items_of_ended_run(res, state: WorkflowState, item_ids: list[str]) -> None:
    """What ``_store_outputs``'s ``end_items`` did not do: each open Item ends as its run did,
    from the outputs the run recorded (the files were stored before the run ended)."""
    if state.state != "completed":
        runs.end_open_items(item_ids, state.error_message or INTERNAL_MESSAGE, cancelled=state.state == "cancelled")
        return
    files = {f.get("fileId"): f for f in state.output_files or []}
    for item_id in item_ids:
        main = next((f for f in state.output_files or [] if f.get("isMainOutput")
                     and str(f.get("fileId", "")).startswith(f"{item_id}.")), None)
        if main is None:
            items_service.fail_item(item_id, FEWER_OUTPUTS)
            continue
        frame_ids = sorted(i for i in files if str(i).startswith(f"{item_id}-frame-"))
        frames = [{"frame_number": n, "frame_count": len(frame_ids), "url": _url(res, i), "file_id": i}
                  for n, i in enumerate(frame_ids)]
        item = items_service.complete_item(item_id, url=_url(res, main["fileId"]), file_id=main["fileId"],
                                           width=main.get("width"), height=main.get("height"),
                                           frames=frames or None, started=state.start_time)
        if item and any(queue.system for queue in res.report_queues):
            reports_service.review_item(res.report_queues, item)
