"""Operations, through real processes: one owner of a data dir's services, commands that use
them from anywhere, orphans of a killed launcher, fast clean shutdowns."""
from __future__ import annotations

import json
import signal
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
                serve.kill()
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
        assert all(_alive(pid) for pid in orphans)  # a launcher killed outright leaves its servers behind

        second_log, third_log = tmp_path / "second.log", tmp_path / "third.log"
        second = aimg("services", env=env, log=second_log)
        launchers.append(second)
        time.sleep(0.3)
        third = aimg("services", env=env, log=third_log)  # started while the second starts
        launchers.append(third)
        wait_for(lambda: "running" in third_log.read_text(), 90, "third launcher", third, third_log)
        assert "stopped 5 process(es) left running by launcher pid" in second_log.read_text(), second_log.read_text()
        assert not any(_alive(pid) for pid in orphans)
        state = _registry(tmp_path)
        assert state["pid"] == second.pid
        assert f"using the embedded services of pid {second.pid}" in third_log.read_text()
        assert stop(third) < 3 and _registry(tmp_path) == state  # a non-owner leaves the registry alone
        took = stop(second)
        assert took < 3 and second.returncode == 0, (took, second_log.read_text())
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
