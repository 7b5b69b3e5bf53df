"""Operations, through real processes: one owner of a data dir's services, commands that use
them from anywhere, orphans of a killed launcher, fast clean shutdowns."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psutil

from aimg_app.devservices.fake_comfyui import FakeComfyUI
from tests.ops_support import aimg, answers, clean_env, stop, wait_for


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _registry(data_dir):
    return json.loads((data_dir / "services.json").read_text())


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_migrate_and_two_workers_beside_a_running_serve(tmp_path):
    data = tmp_path / "data"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = _free_port()
    env = clean_env(AIMG_DATA_DIR=data)
    log = tmp_path / "serve.log"
    serve = aimg("serve", "--port", str(port), env=env, log=log)
    workers = []
    with FakeComfyUI() as comfy:
        try:
            wait_for(lambda: answers(f"http://127.0.0.1:{port}/generateStrongPassword"), 120, "aimg serve", serve, log)
            before = _registry(data)
            assert before["pid"] == serve.pid and before["ready"]

            migrate_log = tmp_path / "migrate.log"
            migrate = aimg("migrate", env=env, log=migrate_log)
            assert migrate.wait(60) == 0, migrate_log.read_text()
            assert "using the embedded services of pid" in migrate_log.read_text()

            # The fleet listing finds the launcher's Redis from the data dir alone, like a worker.
            listing = subprocess.run([sys.executable, "-m", "aimg_app.cli", "comfyui-servers", "--comfyui", comfy.url,
                                      "--json"], env=env, capture_output=True, text=True, timeout=60)
            assert listing.returncode == 0, listing.stderr
            assert [row["health"] for row in json.loads(listing.stdout)] == ["up"]

            for n in range(2):
                wlog = tmp_path / f"worker{n}.log"
                workers.append((aimg("worker", "--comfyui", comfy.url, env=env, cwd=elsewhere, log=wlog), wlog))
            for proc, wlog in workers:
                wait_for(lambda: "worker listening" in wlog.read_text(), 60, "aimg worker", proc, wlog)
            # Nobody started a second set of servers or touched the owner's registry.
            assert _registry(data) == before
            assert answers(f"http://127.0.0.1:{port}/generateStrongPassword")
            for proc, wlog in workers:
                took = stop(proc)
                assert proc.returncode == 0 and took < 3, (took, wlog.read_text()[-2000:])
            assert _registry(data) == before

            took = stop(serve)
        finally:
            for proc, _ in workers:
                if proc.poll() is None:
                    proc.kill()
            if serve.poll() is None:
                stop(serve)  # SIGTERM: a failed test must not leave the embedded services running
    output = log.read_text()
    assert serve.returncode == 0, output
    assert took < 3, f"aimg serve took {took:.1f} s to stop"
    assert "psycopg" not in output and "Traceback" not in output, output
    assert not (data / "services.json").exists()
    assert [p["pid"] for p in before["processes"].values() if _alive(p["pid"])] == []


def test_a_worker_without_services_says_where_it_looked(tmp_path):
    proc = aimg("worker", env=clean_env(AIMG_DATA_DIR=tmp_path), log=tmp_path / "w.log")
    assert proc.wait(30) == 2
    text = (tmp_path / "w.log").read_text()
    assert "AIMG_MONGODB_URI" in text and str(tmp_path / "services.json") in text and "Traceback" not in text


def test_services_left_by_a_killed_launcher_are_stopped_by_the_next(tmp_path):
    env = clean_env(AIMG_DATA_DIR=tmp_path)
    first = aimg("services", env=env, log=tmp_path / "first.log")
    launchers = [first]
    try:
        wait_for(lambda: _registry(tmp_path)["ready"], 60, "first launcher", first, tmp_path / "first.log")
        orphans = [p["pid"] for p in _registry(tmp_path)["processes"].values()]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert orphans and all(_alive(pid) for pid in orphans)  # a launcher killed outright leaves its servers behind

        second_log, third_log = tmp_path / "second.log", tmp_path / "third.log"
        second = aimg("services", env=env, log=second_log)
        launchers.append(second)
        time.sleep(0.3)
        third = aimg("services", env=env, log=third_log)  # started while the second starts
        launchers.append(third)
        for launcher, log in ((second, second_log), (third, third_log)):
            wait_for(lambda: "running" in log.read_text(), 90, "launcher", launcher, log)
        assert not any(_alive(pid) for pid in orphans)
        state = _registry(tmp_path)
        # One of the two took over (the second usually; the third when it got there first on a busy machine)
        (owner, owner_log), (other, other_log) = sorted(((second, second_log), (third, third_log)),
                                                        key=lambda pair: pair[0].pid != state["pid"])
        assert state["pid"] == owner.pid
        assert "stopped 5 process(es) left running by launcher pid" in owner_log.read_text(), owner_log.read_text()
        assert f"using the embedded services of pid {owner.pid}" in other_log.read_text(), other_log.read_text()
        assert stop(other) < 3 and _registry(tmp_path) == state  # a non-owner leaves the registry alone
        took = stop(owner)
        assert took < 3 and owner.returncode == 0, (took, owner_log.read_text())
        assert not (tmp_path / "services.json").exists()
        assert not any(_alive(p["pid"]) for p in state["processes"].values())
    finally:
        for proc in launchers:
            if proc.poll() is None:
                proc.kill()


def _attached_env(app, services, **extra) -> dict:
    """The environment of an ``aimg`` process on the test session's services and the app's database."""
    settings = app.extensions["aimg"].settings
    env = clean_env(**{k: v for k, v in services.items() if k.startswith("AIMG_")})
    env.update(AIMG_MONGODB_URI=settings.mongodb_uri, AIMG_MIGRATE_ON_START="false", AIMG_DATA_DIR=str(services["data_dir"]))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def test_a_running_scheduler_expires_a_lapsed_tier_and_one_leads(app, client, user, services, tmp_path):
    import datetime as dt

    from aimg_app.models import User
    from aimg_app.models.base import utcnow
    from rq import Queue
    from tests.conftest import ADMIN_HEADERS, assert_ok
    from workers import billing

    soon = utcnow() + dt.timedelta(seconds=2)
    assert_ok(client.post("/setAdminProvidedPremiumTier", headers=ADMIN_HEADERS, json={
        "productId": "trial", "email": user["email"], "tier": 1, "isActive": True,
        "deactivationDate": soon.isoformat() + "Z"}))
    assert User.objects(id=user["user_id"]).first().tier == 1
    env = _attached_env(app, services, AIMG_BILLING_EXPIRE_INTERVAL_S=1, AIMG_SCHEDULER_LOCK_S=2)
    logs = [tmp_path / f"scheduler{n}.log" for n in range(2)]
    procs = [aimg("scheduler", env=env, log=path) for path in logs]
    worker_log = tmp_path / "worker.log"
    procs.append(aimg("worker", "--queue", billing.QUEUE, env=env, log=worker_log))
    try:
        wait_for(lambda: User.objects(id=user["user_id"]).first().tier == 0, 60, "the tier expiring", procs[2], worker_log)
        assert User.objects(id=user["user_id"]).first().merchant_processor == "none"
        wait_for(lambda: all("scheduler leads" in p.read_text() or "standby" in p.read_text() for p in logs), 30,
                 "both schedulers up")
        leading = [n for n, path in enumerate(logs) if "scheduler leads" in path.read_text()]
        assert len(leading) == 1, [path.read_text() for path in logs]
        (leader,) = leading
        standby = 1 - leader
        # The leader dies outright: the other one takes over once the lock lapses.
        procs[leader].kill()
        wait_for(lambda: "scheduler leads" in logs[standby].read_text(), 15, "the standby taking over", procs[standby],
                 logs[standby])
        took = stop(procs[standby])
        assert took < 3 and procs[standby].returncode == 0, (took, logs[standby].read_text()[-2000:])
        took = stop(procs[2])
        assert took < 3 and procs[2].returncode == 0, (took, worker_log.read_text()[-2000:])
        assert '"logger": "rq.cron"' in logs[standby].read_text()  # RQ's own scheduler, in our JSON lines
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        Queue(billing.QUEUE, connection=app.extensions["aimg"].redis).empty()


def test_a_stopped_worker_hands_its_run_back_and_every_job_line_has_the_request_id(make_app, services, tmp_path):
    from aimg_app.models.item import Item
    from aimg_app.models.workflow import WorkflowState
    from tests.conftest import assert_ok, sign_up
    from tests.generation_support import clear_generation_queues, grant_tier

    # A lease far longer than the test: only a hand-back lets the run go on at once.
    app = make_app(generation_lease_s=120.0)
    client = app.test_client()
    clear_generation_queues(app)
    user = sign_up(client)
    grant_tier(user["user_id"], 1)
    with FakeComfyUI(render_seconds=4.0) as comfy:
        env = _attached_env(app, services, AIMG_COMFYUI_URLS=comfy.url, AIMG_GENERATION_LEASE_S=120)
        request_id = "ops-handback-0001"
        status = assert_ok(client.post("/generateImage", json={"prompt": "hand me back", "steps": 5},
                                       headers={**user["headers"], "X-Request-ID": request_id}))["payload"]
        item_id = status["imageID"]
        logs = [tmp_path / "first.log", tmp_path / "second.log"]
        first = aimg("worker", env=env, log=logs[0])
        second = None
        try:
            wait_for(lambda: (s := WorkflowState.objects(item_ids=item_id).first()).prompt_id and s.state == "running",
                     60, "the first worker submitting", first, logs[0])
            took = stop(first)
            assert first.returncode == 0 and took < 3, (took, logs[0].read_text()[-3000:])
            state = WorkflowState.objects(item_ids=item_id).first()
            assert state.state == "queued" and state.lease_until is None and state.attempts == 0, state.log
            second = aimg("worker", env=env, log=logs[1])
            wait_for(lambda: Item.objects(id=item_id).first().status == "completed", 60, "the second worker", second,
                     logs[1])
            assert comfy.stats.prompts_accepted == 1  # the second worker took over the same prompt
            wait_for(lambda: "Job OK" in logs[1].read_text(), 10, "the job's end", second, logs[1])
            assert stop(second) < 3
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
    for path in logs:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
        job_lines = [line for line in lines if line["logger"].startswith("aimg.worker.jobs") or "Job OK" in line["message"]]
        in_job = [line for line in lines if line.get("requestId")]
        assert in_job and all(line["requestId"] == request_id for line in in_job)
        assert all(line.get("requestId") == request_id for line in job_lines), job_lines
    assert any("Job OK" in line for line in logs[1].read_text().splitlines() if request_id in line)
