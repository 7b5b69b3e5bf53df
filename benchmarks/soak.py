"""A fault-and-load soak: nothing lost, nothing done twice, while processes die.

On the embedded services (loopback only) it runs a gunicorn API with 2 processes, 3
``aimg worker`` processes, 2 fake ComfyUI servers and 1 ``aimg scheduler``; 30 users submit 300
generations (each user one at a time, as the concurrency limit wants). Meanwhile, at fixed
fractions of the work done, it SIGKILLs a busy worker (restarted like a supervisor would), restarts
one API process, kills one ComfyUI server for 10 s, and restarts Redis once. Then it prints
jobs submitted / completed / failed (with their messages) / lost, Items completed twice, files
stored twice, 5xx answers (503 while Redis was down is expected), throughput, and how long
each kind of process took to stop on SIGTERM at the end.

    .venv/bin/python -m benchmarks.soak [--jobs 300] [--users 30] [--comfy-down-s 10]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "soak-admin-key-0123456789abcdef"
PASSWORD = "Soak-test-pass1!"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout} s")


class Processes:
    """Child processes by name, each with a log file; stopped on SIGTERM and timed."""

    def __init__(self, env: dict, log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.args: dict[str, list[str]] = {}
        self.restarts: collections.Counter = collections.Counter()

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        self.args[name] = args
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs[name] = proc
        return proc

    def restart(self, name: str) -> None:
        self.restarts[name] += 1
        self.start(name, self.args[name])

    def stop_all(self) -> dict[str, float]:
        """SIGTERM to every process at once; seconds until each one exited."""
        took: dict[str, float] = {}
        started = time.monotonic()
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            else:
                took[name] = 0.0
        while len(took) < len(self.procs) and time.monotonic() - started < 30:
            for name, proc in self.procs.items():
                if name not in took and proc.poll() is not None:
                    took[name] = time.monotonic() - started
            time.sleep(0.02)
        for name, proc in self.procs.items():
            if name not in took:
                proc.kill()
                took[name] = float("inf")
        return took


def _restart_redis(launcher, down_s: float = 2.0) -> tuple[float, float]:
    """Stop the embedded Redis, wait ``down_s``, start it again on the same port and data (AOF)."""
    svc = next(s for s in launcher.running if s.name == "redis")
    down = time.time()
    svc.stop()
    time.sleep(down_s)
    with open(svc.log_dir / "redis.log", "ab") as log:
        svc.process = subprocess.Popen(svc.command(), stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
    svc._wait(svc.ready)
    return down, time.time()


def run(jobs: int = 300, users: int = 30, render_s: float = 0.3, comfy_down_s: float = 10.0,
        timeout_s: float = 900.0, say=print) -> dict:
    from aimg_app.config import load_settings
    from aimg_app.devservices import EmbeddedServices
    from aimg_app.resources import Resources

    data_dir = Path(tempfile.mkdtemp(prefix="aimg-soak-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    launcher = EmbeddedServices(data_dir, env=base_env, say=lambda _m: None)
    exports = launcher.start()
    log_dir = data_dir / "logs"
    comfy_ports = [_free_port(), _free_port()]
    api_port = _free_port()
    env = {**base_env, **exports, "PYTHONPATH": str(ROOT), "AIMG_DATA_DIR": str(data_dir),
           "AIMG_COMFYUI_URLS": ",".join(f"http://127.0.0.1:{p}" for p in comfy_ports),
           "AIMG_ADMIN_KEYS": f"soak:{ADMIN_KEY}", "AIMG_MIGRATE_ON_START": "false",
           "AIMG_GENERATION_LEASE_S": "3", "AIMG_COMFYUI_HEALTH_TTL_S": "1", "AIMG_COMFYUI_HTTP_TIMEOUT_S": "5",
           "AIMG_LOG_LEVEL": "WARNING", "AIMG_TRUSTED_PROXY_COUNT": "1", "AIMG_BIND": f"127.0.0.1:{api_port}",
           "AIMG_API_PROCESSES": "2", "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "metrics")}
    settings = load_settings(env)
    resources = Resources(settings)
    resources.migrate()
    procs = Processes(env, log_dir)
    base = f"http://127.0.0.1:{api_port}"
    figures: dict = {}
    try:
        for n, port in enumerate(comfy_ports):
            procs.start(f"comfyui{n}", ["-m", "aimg_app", "fake-comfyui", "--port", str(port),
                                        "--render-seconds", str(render_s)])
        procs.start("api", ["-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"])
        for n in range(3):
            procs.start(f"worker{n}", ["-m", "aimg_app", "worker"])
        procs.start("scheduler", ["-m", "aimg_app", "scheduler"])
        for port in comfy_ports:
            _wait(lambda: requests.get(f"http://127.0.0.1:{port}/system_stats", timeout=1).ok, 30, "fake ComfyUI")
        _wait(lambda: requests.get(f"{base}/healthz", timeout=1).ok, 60, "the API")
        figures = _drive(base, resources, procs, launcher, comfy_ports, jobs, users, comfy_down_s, timeout_s, say)
    finally:
        figures["stopSeconds"] = {k: round(v, 2) for k, v in procs.stop_all().items()}
        resources.close()
        launcher.stop()
    return figures


def _drive(base, resources, procs, launcher, comfy_ports, jobs, users, comfy_down_s, timeout_s, say) -> dict:
    import psutil

    from aimg_app.models import User
    from aimg_app.models.file import StoredFile
    from aimg_app.models.item import Item
    from aimg_app.models.workflow import WorkflowState

    resources.connect_mongo()
    statuses: collections.Counter = collections.Counter()
    five_xx: list[tuple[float, int, str]] = []
    item_ids: list[str] = []
    user_ids: list[str] = []
    lock = threading.Lock()
    done = {"n": 0}
    stop = threading.Event()
    per_user = [jobs // users + (1 if i < jobs % users else 0) for i in range(users)]

    def call(session, method, path, **kwargs):
        """One API call, retried through restarts and outages like a client would."""
        while not stop.is_set():
            try:
                answer = session.request(method, base + path, timeout=30, **kwargs)
            except requests.RequestException:
                statuses["connection error"] += 1
                time.sleep(0.3)
                continue
            statuses[answer.status_code] += 1
            if answer.status_code >= 500:
                with lock:
                    five_xx.append((time.time(), answer.status_code, path))
                time.sleep(0.3)
                continue
            if answer.status_code == 429:
                time.sleep(0.2)
                continue
            return answer
        return None

    def user_loop(index: int) -> None:
        session = requests.Session()
        session.headers.update({"X-Session-ID": str(uuid.uuid4()), "X-Forwarded-For": f"10.77.{index // 250}.{index % 250 + 1}"})
        answer = call(session, "POST", "/createUser", json={"email": f"soak-{uuid.uuid4().hex[:10]}@example.com",
                                                            "password": PASSWORD})
        if answer is None or answer.status_code != 200:
            return
        with lock:
            user_ids.append(answer.json()["payload"]["userID"])
        for j in range(per_user[index]):
            answer = call(session, "POST", "/generateImage", json={"prompt": f"soak {index}-{j}", "steps": 3})
            if answer is None:
                return
            if answer.status_code != 200:
                statuses[f"refused {answer.status_code}"] += 1
                continue
            item_id = answer.json()["payload"]["imageID"]
            with lock:
                item_ids.append(item_id)
            while not stop.is_set():  # one at a time per user: wait for this one to end
                item = Item.objects(id=item_id).only("status").first()
                if item is not None and item.status in ("completed", "failed", "cancelled"):
                    with lock:
                        done["n"] += 1
                    break
                time.sleep(0.1)

    faults: list[dict] = []

    def at(fraction: float) -> None:
        while not stop.is_set() and done["n"] < fraction * jobs:
            time.sleep(0.05)

    def fault_driver() -> None:
        at(0.10)
        busy = {int(s.worker_name.split(":")[1]) for s in WorkflowState.objects(state="running").only("worker_name")
                if s.worker_name}
        victim = next((n for n in procs.procs if n.startswith("worker") and procs.procs[n].pid in busy), "worker0")
        procs.procs[victim].kill()
        procs.procs[victim].wait()
        faults.append({"fault": f"SIGKILL {victim} (busy: {procs.procs[victim].pid in busy})", "at": time.time()})
        procs.restart(victim)
        at(0.25)
        children = psutil.Process(procs.procs["api"].pid).children()
        if children:
            children[0].send_signal(signal.SIGTERM)
            faults.append({"fault": f"restart API process {children[0].pid}", "at": time.time()})
        at(0.40)
        procs.procs["comfyui1"].kill()
        procs.procs["comfyui1"].wait()
        faults.append({"fault": f"ComfyUI server 1 down for {comfy_down_s} s", "at": time.time()})
        time.sleep(comfy_down_s)
        procs.restart("comfyui1")
        at(0.65)
        down, up = _restart_redis(launcher)
        faults.append({"fault": f"Redis restarted ({up - down:.1f} s down)", "at": down, "until": up})

    def supervisor() -> None:
        """What a process manager does: restart a worker that exited on its own."""
        while not stop.wait(0.5):
            for name, proc in list(procs.procs.items()):
                if name.startswith(("worker", "scheduler")) and proc.poll() is not None:
                    procs.restart(name)

    started = time.time()
    threads = [threading.Thread(target=user_loop, args=(i,), daemon=True) for i in range(users)]
    driver = threading.Thread(target=fault_driver, daemon=True)
    watcher = threading.Thread(target=supervisor, daemon=True)
    for thread in [*threads, driver, watcher]:
        thread.start()
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    stop.set()
    elapsed = time.time() - started
    items = {i.id: i for i in Item.objects(id__in=item_ids)}
    completed = [i for i in items.values() if i.status == "completed"]
    failed = [i for i in items.values() if i.status in ("failed", "cancelled")]
    lost = len(item_ids) - len(completed) - len(failed)
    owners = collections.Counter(i.user_id for i in completed)
    counted = {u.id: u.item_count for u in User.objects(id__in=list(owners))}
    twice = sum(max(0, counted.get(uid, 0) - n) for uid, n in owners.items())
    files_twice = sum(1 for i in completed if StoredFile.objects(id__startswith=i.id).count() > 1)
    all_items = Item.objects(user_id__in=user_ids).count()
    redis_window = next(((f["at"], f["until"]) for f in faults if "until" in f), None)

    def during_redis(t: float) -> bool:
        return redis_window is not None and redis_window[0] - 1 <= t <= redis_window[1] + 5

    unexpected = [(code, path) for t, code, path in five_xx if code != 503 or not during_redis(t)]
    figures = {
        "submitted": len(item_ids), "completed": len(completed), "failed": len(failed),
        "failedMessages": sorted({i.error_message or "" for i in failed}), "lost": lost,
        "itemsInDatabase": all_items, "completedTwice": twice, "filesStoredTwice": files_twice,
        "fiveXX": len(five_xx), "unexpectedFiveXX": unexpected,
        "statuses": {str(k): v for k, v in statuses.items()},
        "throughputPerSecond": round(len(completed) / elapsed, 2), "seconds": round(elapsed, 1),
        "faults": [f["fault"] for f in faults], "restarts": dict(procs.restarts),
    }
    say(json.dumps(figures, indent=2))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--render-seconds", type=float, default=0.3)
    parser.add_argument("--comfy-down-s", type=float, default=10.0)
    parser.add_argument("--timeout-s", type=float, default=900.0)
    args = parser.parse_args(argv)
    figures = run(args.jobs, args.users, args.render_seconds, args.comfy_down_s, args.timeout_s,
                  say=lambda _text: None)
    print(json.dumps(figures, indent=2))
    ok = (figures["lost"] == 0 and figures["completedTwice"] == 0 and figures["filesStoredTwice"] == 0
          and not figures["unexpectedFiveXX"] and figures["failed"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
