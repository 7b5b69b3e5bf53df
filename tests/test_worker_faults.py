"""Faults on the generation path: rejected graphs, run-time errors, dead and restarted
ComfyUI servers, timeouts, and a worker killed mid-job. Every Item ends completed exactly
once, or failed with a message."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aimg_app.devservices.fake_comfyui import FakeComfyUI
from aimg_app.models import User
from aimg_app.models.file import StoredFile
from aimg_app.models.item import Item
from aimg_app.models.workflow import WorkflowState
from tests.conftest import assert_ok, sign_up
from tests.generation_support import Slots, clear_generation_queues, grant_tier, wait_for, work
from workers import jobs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def fakes():
    started = [FakeComfyUI(render_seconds=0.02).start() for _ in range(2)]
    yield started
    for fake in started:
        fake.stop()


@pytest.fixture(scope="module")
def app(make_app):
    from tests.plugins import every_hook

    return make_app(plugins=[every_hook], generation_lease_s=2.0, comfyui_health_ttl_s=30.0)


@pytest.fixture()
def pool(app, fakes):
    """Point the app's workers at this test's fake servers."""
    settings = app.extensions["aimg"].settings
    settings.comfyui_urls = tuple(f.url for f in fakes)
    clear_generation_queues(app)
    yield fakes
    clear_generation_queues(app)


@pytest.fixture()
def pro(client):
    user = sign_up(client)
    grant_tier(user["user_id"], 1)
    return user


def _enqueue(client, user, **body):
    body.setdefault("workflowTemplateName", "test-blank")
    return assert_ok(client.post("/2/enqueueWorkflow", json=body, headers=user["headers"]))["payload"]


def _state(answer) -> WorkflowState:
    return WorkflowState.objects(public_id=answer["workflowId"]).first()


def _busy(app, url: str) -> None:
    """Make the pool prefer the other server (a run in flight on ``url``)."""
    app.extensions["aimg"].redis.zadd(f"aimg:comfy:load:{url}", {"busy": time.time() + 60})


def _items(answer):
    return list(Item.objects(id__in=answer["itemIds"]))


def test_a_graph_comfyui_rejects_fails_the_items_with_its_reason(app, client, pro, pool):
    answer = _enqueue(client, pro, parameters=[{"name": "Color", "value": "-5"}], batchSize=2)
    work(app)
    items = _items(answer)
    assert {i.status for i in items} == {"failed"}
    message = items[0].error_message
    assert "ComfyUI rejected the workflow" in message and "Value -5 smaller than min of 0" in message
    status = assert_ok(client.get(f"/getItemStatus?imageID={items[0].id}", headers=pro["headers"]))["payload"]
    assert status["errorMessage"] == message
    state = _state(answer)
    assert state.state == "error" and state.is_error and state.error_message == message
    assert sum(f.stats.prompts_rejected for f in pool) == 1  # not retried elsewhere


def test_a_run_time_error_fails_without_retry(app, client, pro, pool):
    for fake in pool:
        fake.inject("execution_error", message="CUDA out of memory")
    answer = _enqueue(client, pro)
    work(app)
    (item,) = _items(answer)
    assert item.status == "failed" and "CUDA out of memory" in item.error_message
    assert sum(f.stats.prompts_accepted for f in pool) == 1


def test_a_server_that_dies_mid_run_hands_the_run_to_another(app, client, pro, pool):
    dying, healthy = pool
    dying.inject("crash")
    _busy(app, healthy.url)
    answer = _enqueue(client, pro, batchSize=2)
    work(app)
    items = _items(answer)
    assert {i.status for i in items} == {"completed"}, [i.error_message for i in items]
    assert healthy.stats.executed == 1 and dying.stats.prompts_accepted == 1
    state = _state(answer)
    assert state.comfy_server == healthy.url
    assert any("generation server failed" in line for line in state.log)
    assert not [line for line in state.log if dying.url in line or healthy.url in line]  # shown to the user
    assert User.objects(id=pro["user_id"]).first().item_count == 2


def test_a_restarted_server_that_forgot_the_prompt(app, client, pro, pool):
    forgetful, healthy = pool
    forgetful.inject("hang")
    _busy(app, healthy.url)
    answer = _enqueue(client, pro)

    def restart_when_running():
        deadline = time.monotonic() + 10
        while forgetful.running is None and time.monotonic() < deadline:
            time.sleep(0.02)
        forgetful.restart()

    restarter = threading.Thread(target=restart_when_running)
    restarter.start()
    work(app)
    restarter.join()
    (item,) = _items(answer)
    assert item.status == "completed", item.error_message
    assert _state(answer).comfy_server == healthy.url, _state(answer).log


def test_no_server_answering_fails_after_the_bounded_wait(app, client, pro, pool):
    settings = app.extensions["aimg"].settings
    for fake in pool:
        fake.stop()
    answer = _enqueue(client, pro)
    settings.generation_server_wait_s = 1.5
    seen = {}

    def watch():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "status" not in seen:
            status = client.get(f"/getItemStatus?imageID={answer['itemIds'][0]}", headers=pro["headers"]).get_json()
            # (before the in-process worker's first heartbeat it may say that no worker runs)
            if status["payload"].get("statusMessage") == "waiting for a generation server":
                seen["status"] = status["payload"]
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    try:
        work(app)
    finally:
        settings.generation_server_wait_s = 600.0
    watcher.join()
    assert 1.5 <= time.monotonic() - started < 20
    assert seen["status"]["statusMessage"] == "waiting for a generation server"
    (item,) = _items(answer)
    assert item.status == "failed" and "try again" in item.error_message.lower()
    assert "within 1.5 s" in item.error_message


def test_a_run_past_its_timeout_is_interrupted(app, client, pro, pool):
    settings = app.extensions["aimg"].settings
    for fake in pool:
        fake.inject("hang")
    settings.comfyui_prompt_timeout_s = 1.0
    try:
        answer = _enqueue(client, pro)
        work(app)
    finally:
        settings.comfyui_prompt_timeout_s = 600.0
    (item,) = _items(answer)
    assert item.status == "failed" and "timed out" in item.error_message
    state = _state(answer)
    fake = next(f for f in pool if f.url == state.comfy_server)
    deadline = time.monotonic() + 5
    while fake.running is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.running is None  # no orphaned GPU work
    messages = [m[0] for m in fake.history[state.prompt_id]["status"]["messages"]]
    assert "execution_interrupted" in messages


def test_cancel_a_running_generation_interrupts_comfyui(app, client, pro, pool):
    for fake in pool:
        fake.inject("hang")
    answer = _enqueue(client, pro)

    def cancel_when_running():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = _state(answer)
            if state.prompt_id:
                client.post("/cancelGeneration", json={"workflowId": answer["workflowId"]}, headers=pro["headers"])
                return
            time.sleep(0.05)

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    work(app)
    canceller.join()
    (item,) = _items(answer)
    assert item.status == "cancelled" and item.error_message == "Cancelled."
    assert _state(answer).state == "cancelled"


def _worker_process(app, services) -> subprocess.Popen:
    settings = app.extensions["aimg"].settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    env.update({k: v for k, v in services.items() if k.startswith("AIMG_")})
    env.update(AIMG_MONGODB_URI=settings.mongodb_uri, AIMG_COMFYUI_URLS=",".join(settings.comfyui_urls),
               AIMG_GENERATION_LEASE_S=str(settings.generation_lease_s), AIMG_MIGRATE_ON_START="false",
               AIMG_DATA_DIR=str(services["data_dir"]), AIMG_LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "workers.main"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_worker_killed_mid_job_is_taken_over_and_completes_once(app, client, user, pool, services):
    comfy = pool[0]
    pool[1].stop()
    app.extensions["aimg"].settings.comfyui_urls = (comfy.url,)
    comfy.render_seconds = 3.0
    status = assert_ok(client.post("/generateImage", json={"prompt": "kill me", "steps": 5},
                                   headers=user["headers"]))["payload"]
    item_id = status["imageID"]
    process = _worker_process(app, services)
    try:
        deadline = time.monotonic() + 60
        state = None
        while time.monotonic() < deadline:
            state = WorkflowState.objects(item_ids=item_id).first()
            if state.prompt_id and Item.objects(id=item_id).first().progress > 0:
                break
            time.sleep(0.05)
        assert state.prompt_id, "the worker never submitted the prompt"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert Item.objects(id=item_id).first().status == "running"
    time.sleep(app.extensions["aimg"].settings.generation_lease_s + 0.5)  # the lease lapses
    assert jobs.requeue_stale_runs(app.extensions["aimg"]) == [state.id]
    assert jobs.requeue_stale_runs(app.extensions["aimg"]) == []  # requeued once
    work(app)
    item = Item.objects(id=item_id).first()
    assert item.status == "completed", item.error_message
    final = WorkflowState.objects(id=state.id).first()
    assert final.attempts == 2 and final.state == "completed"
    assert comfy.stats.prompts_accepted == 1  # the second worker took over the same prompt
    assert StoredFile.objects(id__startswith=item_id).count() == 1
    assert User.objects(id=user["user_id"]).first().item_count == 1
    # running the job again (RQ's own retry of the dead execution) completes nothing twice
    assert jobs.run_workflow(state.id).startswith("skipped")
    assert User.objects(id=user["user_id"]).first().item_count == 1


def _cancel(client, user, answer) -> float:
    """When the cancel was recorded (the answer came): from then on only the push can reach
    the worker before its next lease renewal."""
    assert_ok(client.post("/cancelGeneration", json={"workflowId": answer["workflowId"]}, headers=user["headers"]))
    return time.time()


def test_cancel_reaches_comfyui_at_once_queued_prompts_are_deleted(app, client, pro, pool):
    comfy = pool[0]
    pool[1].stop()
    app.extensions["aimg"].settings.comfyui_urls = (comfy.url,)
    comfy.inject("hang")
    answers = [_enqueue(client, pro), _enqueue(client, pro)]
    with Slots(app, slots=2):
        wait_for(lambda: comfy.running is not None and len(comfy.pending) == 1
                 and all(_state(a).prompt_id for a in answers))
        pending_id = comfy.pending[0].prompt_id  # the next run waits in ComfyUI's own queue
        prefetched, running = sorted(answers, key=lambda a: _state(a).prompt_id != pending_id)
        asked = _cancel(client, pro, prefetched)
        deleted_at, deleted_id = wait_for(lambda: comfy.stats.deleted and comfy.stats.deleted[-1], timeout_s=5)
        assert deleted_id == pending_id and deleted_at - asked < 0.5, deleted_at - asked
        asked = _cancel(client, pro, running)
        interrupted_at, interrupted_id = wait_for(lambda: comfy.stats.interrupted and comfy.stats.interrupted[-1],
                                                  timeout_s=5)
        assert interrupted_id == _state(running).prompt_id and interrupted_at - asked < 0.5, interrupted_at - asked
        wait_for(lambda: _state(running).state == "cancelled" and _state(prefetched).state == "cancelled")
    assert comfy.stats.executed == 1 and pending_id not in comfy.history  # the deleted prompt never ran
    assert {i.status for i in _items(running) + _items(prefetched)} == {"cancelled"}


def test_a_comfyui_restart_loses_no_job(app, client, pro, pool):
    comfy = pool[0]
    pool[1].stop()
    app.extensions["aimg"].settings.comfyui_urls = (comfy.url,)
    comfy.inject("hang")  # the run on the GPU when it dies
    answers = [_enqueue(client, pro) for _ in range(3)]
    with Slots(app, slots=2):
        wait_for(lambda: comfy.running is not None and comfy.pending)
        comfy.stop()
        time.sleep(5)
        waiting = assert_ok(client.get(f"/2/getWorkflowStatus?workflowId={answers[0]['workflowId']}",
                                       headers=pro["headers"]))["payload"]
        assert waiting["statusMessage"] == "waiting for a generation server", waiting
        restarted = FakeComfyUI(port=comfy.port, render_seconds=0.02).start()
        try:
            wait_for(lambda: all(_state(a).state == "completed" for a in answers), timeout_s=30)
        finally:
            restarted.stop()
    items = [item for answer in answers for item in _items(answer)]
    assert {i.status for i in items} == {"completed"}
    assert restarted.stats.executed == 3  # every run submitted again once the server was back
    assert User.objects(id=pro["user_id"]).first().item_count == 3
    for item in items:
        assert StoredFile.objects(id__startswith=item.id).count() == 1


def _workflow_status(client, user, answer) -> dict:
    return assert_ok(client.get(f"/2/getWorkflowStatus?workflowId={answer['workflowId']}",
                                headers=user["headers"]))["payload"]


def test_every_submission_counts_towards_the_attempt_limit(app, client, pro, pool):
    settings = app.extensions["aimg"].settings
    for fake in pool:
        fake.inject("crash")  # each server dies under the run it was given
    settings.comfyui_max_attempts = 2
    try:
        answer = _enqueue(client, pro)
        work(app)
    finally:
        settings.comfyui_max_attempts = 3
    status = _workflow_status(client, pro, answer)
    assert status["state"] == "error", status
    message = status["errorMessage"]
    assert "after 2 attempts" in message and "ComfyUI closed the connection" in message, message
    assert any("trying again (attempt 2 of 2)" in line for line in status["log"]), status["log"]
    assert _state(answer).attempts == 2  # the second submission counted
    assert sum(f.stats.prompts_accepted for f in pool) == 2  # bounded: no third
    (item,) = _items(answer)
    assert item.status == "failed" and item.error_message == message


def test_after_a_restart_the_runs_go_back_in_their_order_at_once(app, client, pro, pool):
    comfy = pool[0]
    pool[1].stop()
    app.extensions["aimg"].settings.comfyui_urls = (comfy.url,)
    comfy.inject("hang")  # the run on the GPU when it dies; two more wait in ComfyUI's queue
    answers = []
    with Slots(app, slots=3):
        for count in (1, 2, 3):  # one after the other: runs that reach ComfyUI at the same moment have no order
            answers.append(_enqueue(client, pro))
            wait_for(lambda: (comfy.running is not None) + len(comfy.pending) == count)
        queue_order = [comfy.running.extra_data["client_id"]] + [p.extra_data["client_id"] for p in comfy.pending]
        comfy.stop()
        time.sleep(1.5)  # every run has seen its server die, and waits
        restarted = FakeComfyUI(port=comfy.port, render_seconds=0.02).start()
        back_at = time.time()
        try:
            wait_for(lambda: all(_state(a).state == "completed" for a in answers), timeout_s=30)
        finally:
            restarted.stop()
    states = [_state(a) for a in answers]
    accepted = {s.id: restarted.stats.accepted_at[s.prompt_id] for s in states}
    assert sorted(accepted, key=accepted.get) == queue_order  # the executing run first, then the queue
    # no backoff on top: before, a failed probe kept the server marked down for 2 s more
    assert min(accepted.values()) - back_at < 3.0, min(accepted.values()) - back_at
    for state in states:
        (item,) = Item.objects(id__in=state.item_ids)
        assert item.status == "completed" and item.started_date is not None
        assert state.start_time <= item.started_date <= item.completed_date


def test_no_reader_sees_a_finished_item_under_a_running_run(app, client, pro, pool):
    seen = []
    for _ in range(4):
        answer = _enqueue(client, pro, batchSize=3)
        stop = threading.Event()

        def read():
            while not stop.is_set():
                item = assert_ok(client.get(f"/getItemStatus?imageID={answer['itemIds'][0]}",
                                            headers=pro["headers"]))["payload"]
                if item["status"] == "completed":  # the first Item completed: its run is over too
                    seen.append(_workflow_status(client, pro, answer)["state"])

        reader = threading.Thread(target=read)
        reader.start()
        try:
            work(app)
            time.sleep(0.1)
        finally:
            stop.set()
            reader.join()
    assert seen and set(seen) == {"completed"}, seen


def test_a_worker_keeps_its_connections_to_a_server(app, client, pro, pool):
    comfy = pool[0]
    pool[1].stop()
    app.extensions["aimg"].settings.comfyui_urls = (comfy.url,)
    with Slots(app, slots=1):
        for _round in range(2):  # at most 3 at a time on this plan
            answers = [_enqueue(client, pro) for _ in range(3)]
            wait_for(lambda: all(_state(a).state == "completed" for a in answers), timeout_s=30)
    # one slot, one client: its few connections serve every run (health, prompt, history, files)
    assert len(comfy.stats.connections) <= 2, comfy.stats.connections
    assert comfy.stats.prompts_accepted == 6


def test_the_next_prompt_goes_to_comfyui_while_the_last_ones_outputs_are_stored(app, client, pro, pool, monkeypatch):
    """A slow file store (or a slow database) must not leave the GPU idle: the next run is
    submitted as soon as ComfyUI has executed the last one, not once its files are stored."""
    from aimg_app.services import files as files_service

    comfy = pool[0]
    pool[1].stop()
    app.extensions["aimg"].settings.comfyui_urls = (comfy.url,)
    real_store = files_service.store_file

    def slow_store(*args, **kwargs):
        time.sleep(1.0)
        return real_store(*args, **kwargs)

    monkeypatch.setattr(files_service, "store_file", slow_store)
    answers = [_enqueue(client, pro) for _ in range(2)]
    with Slots(app, slots=1):  # one run of this worker on ComfyUI at a time
        wait_for(lambda: all(_state(a).state == "completed" for a in answers), timeout_s=30)
    first, second = sorted((_state(a) for a in answers), key=lambda s: comfy.stats.accepted_at[s.prompt_id])
    (first_item,) = _items({"itemIds": first.item_ids})
    first_done = first_item.completed_date.replace(tzinfo=dt.timezone.utc).timestamp()
    assert comfy.stats.accepted_at[second.prompt_id] < comfy.stats.finished_at[first.prompt_id] + 0.5
    assert comfy.stats.accepted_at[second.prompt_id] < first_done - 0.5  # not after the slow store
    assert comfy.stats.executed == 2
    for answer in answers:  # each output stored once, each Item completed
        (item,) = _items(answer)
        assert item.status == "completed" and StoredFile.objects(id__startswith=item.id).count() == 1


def test_a_cancel_answered_as_taken_holds_even_once_comfyui_has_finished(app, client, pro, pool, monkeypatch):
    """The attack: cancel while the worker stores what ComfyUI just made. The answer says
    "cancelled", so the Item must end cancelled (before: it completed, with its file)."""
    from aimg_app.services import files as files_service

    comfy = pool[0]
    pool[1].stop()
    app.extensions["aimg"].settings.comfyui_urls = (comfy.url,)
    storing = threading.Event()
    real_store = files_service.store_file

    def slow_store(*args, **kwargs):
        storing.set()
        time.sleep(1.0)
        return real_store(*args, **kwargs)

    monkeypatch.setattr(files_service, "store_file", slow_store)
    answer = _enqueue(client, pro)
    with Slots(app, slots=1):
        assert storing.wait(30)
        assert comfy.stats.executed == 1 and len(comfy.history) == 1  # ComfyUI is done with it
        said = assert_ok(client.post("/cancelGeneration", json={"workflowId": answer["workflowId"]},
                                     headers=pro["headers"]))["payload"]
        assert [(a["status"], a["cancelled"]) for a in said] == [("cancelled", True)]
        wait_for(lambda: _state(answer).state == "cancelled", timeout_s=15)
    (item,) = _items(answer)
    assert item.status == "cancelled"
    assert StoredFile.objects(id__startswith=item.id).count() == 0  # its output went with it
    assert User.objects(id=pro["user_id"]).first().item_count == 0
    assert _workflow_status(client, pro, answer)["errorMessage"] == "Cancelled."


def test_a_cancel_that_comes_after_the_run_ended_says_so(app, client, pro, pool):
    answer = _enqueue(client, pro)
    work(app)
    said = assert_ok(client.post("/cancelGeneration", json={"workflowId": answer["workflowId"]},
                                 headers=pro["headers"]))["payload"]
    assert [(a["status"], a["cancelled"]) for a in said] == [("completed", False)]
    assert {i.status for i in _items(answer)} == {"completed"}


def _log_of(client, user, answer) -> list[tuple[dt.datetime, str]]:
    lines = _workflow_status(client, user, answer)["log"]
    return [(dt.datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")), line.split(" ", 1)[1])
            for line in lines]


def _first(log, text: str) -> int:
    return next(n for n, (_, line) in enumerate(log) if line.startswith(text))


def test_a_runs_log_is_in_the_order_things_happened(app, client, pro, pool):
    """Where a run was submitted is written with its next write, up to a second later: its
    line is stamped when it was submitted, before "started"."""
    comfy = pool[0]
    pool[1].stop()
    app.extensions["aimg"].settings.comfyui_urls = (comfy.url,)
    comfy.render_seconds = 0.6  # long enough for a progress write, which carries the submission
    answer = _enqueue(client, pro)
    work(app)
    log = _log_of(client, pro, answer)
    assert [when for when, _ in log] == sorted(when for when, _ in log), log
    assert _first(log, "submitted to a generation server") < _first(log, "started") < _first(log, "completed"), log


def test_a_run_cancelled_while_executing_says_it_started(app, client, pro, pool):
    comfy = pool[0]
    pool[1].stop()
    app.extensions["aimg"].settings.comfyui_urls = (comfy.url,)
    comfy.inject("hang")
    answer = _enqueue(client, pro)
    with Slots(app, slots=1):
        wait_for(lambda: comfy.running is not None)
        _cancel(client, pro, answer)
        wait_for(lambda: _state(answer).state == "cancelled")
    log = _log_of(client, pro, answer)
    assert _first(log, "submitted to a generation server") < _first(log, "started") < _first(log, "failed: Cancelled."), log
    assert [when for when, _ in log] == sorted(when for when, _ in log), log


def test_a_prompt_that_ran_while_no_worker_followed_it_says_when_it_started(app, client, pro, pool, services):
    import urllib.request

    comfy = pool[0]
    pool[1].stop()
    app.extensions["aimg"].settings.comfyui_urls = (comfy.url,)
    comfy.inject("hang")
    # generateImage: a model the worker process has (the test plugins are this process's only)
    answers = [assert_ok(client.post("/generateImage", json={"prompt": f"run {n}", "steps": 5},
                                     headers=pro["headers"]))["payload"] for n in range(2)]
    answers = [{"itemIds": [a["imageID"]], "workflowId": Item.objects(id=a["imageID"]).first().workflow_id}
               for a in answers]
    process = _worker_process(app, services)
    try:
        wait_for(lambda: comfy.running is not None and len(comfy.pending) == 1
                 and all(_state(a).prompt_id for a in answers), timeout_s=60)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    queued = next(a for a in answers if _state(a).id == comfy.pending[0].extra_data["client_id"])
    # the executing prompt stops: the queued one runs to its end while no worker follows it
    urllib.request.urlopen(urllib.request.Request(f"{comfy.url}/interrupt", data=b"", method="POST"), timeout=5)
    wait_for(lambda: _state(queued).prompt_id in comfy.history, timeout_s=10)
    time.sleep(app.extensions["aimg"].settings.generation_lease_s + 0.5)  # the leases lapse
    assert len(jobs.requeue_stale_runs(app.extensions["aimg"])) == 2
    work(app)
    (item,) = _items(queued)
    assert item.status == "completed", item.error_message
    assert item.started_date is not None and _state(queued).start_time <= item.started_date <= item.completed_date
    assert comfy.stats.executed == 2 + 1  # the interrupted one went again; the finished one was resumed


def test_a_queued_run_its_queue_lost_is_queued_again_once(app, client, user):
    """Redis lost the job (popped by a worker that then lost Redis, or a push not yet on disk
    when Redis stopped): the run must not wait for ever."""
    import datetime as dt

    from aimg_app import queueing

    clear_generation_queues(app)
    status = assert_ok(client.post("/generateImage", json={"prompt": "lost job"}, headers=user["headers"]))["payload"]
    state = WorkflowState.objects(item_ids=status["imageID"]).first()
    resources = app.extensions["aimg"]
    assert queueing.remove_queued(resources.redis, state.queue_name, state.id)  # the queue lost it
    assert jobs.requeue_stale_runs(resources) == []  # a fresh run: maybe being queued right now
    WorkflowState.objects(id=state.id).update_one(
        set__created_date=state.created_date - dt.timedelta(seconds=jobs.LOST_QUEUED_AFTER_S + 1))
    assert jobs.requeue_stale_runs(resources) == [state.id]
    assert jobs.requeue_stale_runs(resources) == []  # once
    assert queueing.is_waiting(resources.redis, state.queue_name, state.id)  # a worker will take it
    assert queueing.take_next(resources.redis, [state.queue_name], timeout_s=1) == state.id  # at the front
    assert WorkflowState.objects(id=state.id).first().state == "queued"
    assert_ok(client.post("/cancelGeneration", json={"imageID": status["imageID"]}, headers=user["headers"]))


def test_items_left_open_by_a_worker_that_died_after_ending_their_run_are_ended_once(app, client, pro, pool,
                                                                                    monkeypatch):
    """The worker ends the run, then its Items (so no reader sees a finished Item under a
    running run); a worker killed in between left the Items running for ever."""
    import datetime as dt

    class Killed(BaseException):  # as a SIGKILL would: nothing after it runs
        pass

    def killed(*_args, **_kwargs):
        raise Killed()

    answer = _enqueue(client, pro, batchSize=2)
    monkeypatch.setattr(jobs.items_service, "complete_item", killed)
    try:
        work(app)  # the job dies there (RQ records it as failed)
    except Killed:
        pass
    monkeypatch.undo()
    state = _state(answer)
    # left open (queued: a run this short costs no write for its start)
    assert state.state == "completed" and [i.status for i in _items(answer)] == ["queued", "queued"]
    resources = app.extensions["aimg"]
    jobs.requeue_stale_runs(resources)
    assert {i.status for i in _items(answer)} == {"queued"}  # just ended: maybe its worker is ending them now
    WorkflowState.objects(id=state.id).update_one(
        set__end_time=state.end_time - dt.timedelta(seconds=jobs.OPEN_ITEMS_AFTER_S + 1))
    Item.objects(id__in=answer["itemIds"]).update(
        set__created_date=state.created_date - dt.timedelta(seconds=jobs.OPEN_ITEMS_AFTER_S + 1))
    jobs.requeue_stale_runs(resources)
    for item_id in answer["itemIds"]:
        shown = assert_ok(client.get(f"/getItemStatus?imageID={item_id}", headers=pro["headers"]))["payload"]
        assert shown["status"] == "completed", shown
        picture = client.get(f"/getFile?id={item_id}.png")
        assert picture.status_code == 200 and picture.data[:8] == b"\x89PNG\r\n\x1a\n"
    completed = [i.completed_date for i in _items(answer)]
    jobs.requeue_stale_runs(resources)  # once: a second pass changes nothing
    assert [i.completed_date for i in _items(answer)] == completed
    assert StoredFile.objects(id__in=[f"{i}.png" for i in answer["itemIds"]]).count() == 2
