"""Generation throughput, per-job overhead and the ETA: the whole path against ComfyUI alone.

One run prints every figure of the generation fleet's targets, each beside its target:

- Throughput, for 1 and 3 fake servers x 1 and 2 ``aimg worker`` processes per server: N
  generations through HTTP (the Flask app) -> Redis -> workers -> fake ComfyUI servers with
  a fixed render time, against the same prompts posted straight to one fake ComfyUI in the
  same run. Everything is queued first and the queues are opened once every worker is up,
  so what is measured is how busy the workers keep each server: per server, jobs over its
  first start to last end (GPU time), and the mean idle gap between two jobs on a server.
- Per-job overhead (render time 0, one job at a time, a worker in this process): median and
  p95 of queued (the job pushed to Redis) -> submitted to ComfyUI and of ComfyUI done ->
  Item completed, the MongoDB commands one job costs (pymongo command monitoring, the API
  request's and the worker's apart), and generateImage / enqueueWorkflow in-process latency.
- The ETA: ``estimatedSecondsRemaining`` read right after each enqueue of a mixed-size batch
  (a fake GPU whose render time grows with pixels x steps), against when each really ended.

The benchmark waits on the run events (Redis pub/sub), not by polling MongoDB, so it adds
no load to what it measures.

    .venv/bin/python -m benchmarks.generation                 # everything (a few minutes)
    .venv/bin/python -m benchmarks.generation --only overhead --overhead 40
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import shutil
import tempfile
import time
import threading
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _graph(index: int) -> dict:
    from plugins.default_workflows import _txt2img_graph

    graph = json.loads(json.dumps(_txt2img_graph()).replace('"{{SEED}}"', str(index)))
    replacements = {"{{MODEL}}": "f222.safetensors", "{{POSITIVE_PROMPT}}": f"benchmark {index}",
                    "{{NEGATIVE_PROMPT}}": "", "{{WIDTH}}": 512, "{{HEIGHT}}": 512, "{{BATCH_SIZE}}": 1,
                    "{{STEPS}}": 20, "{{CFG_SCALE}}": 7, "{{SAMPLER}}": "euler", "{{SCHEDULER}}": "normal"}
    from aimg_app.services.graph_render import substitute

    return substitute(graph, replacements)


def direct(n: int, render_seconds: float) -> dict:
    """N prompts posted straight to one fake ComfyUI, all at once; time until the last ends."""
    from aimg_app.devservices.fake_comfyui import FakeComfyUI

    with FakeComfyUI(render_seconds=render_seconds) as fake:
        ids = [httpx.post(f"{fake.url}/prompt", json={"prompt": _graph(i), "client_id": "bench"}).json()["prompt_id"]
               for i in range(n)]
        while not all(pid in fake.history for pid in ids):
            time.sleep(0.005)
        elapsed = _window([fake])
        return {"seconds": elapsed, "perSecond": n / elapsed, **fake.stats.as_dict()}


def _window(fakes) -> float:
    """From the first run's start to the last run's end over the servers (GPU time used)."""
    runs = [run for fake in fakes for run in fake.stats.runs]
    return max(end for _, end in runs) - min(start for start, _ in runs)


class Services:
    """The embedded services (MongoDB, Redis, ...) and one app over them, for the whole run."""

    def __init__(self):
        from aimg_app.devservices import EmbeddedServices

        self.data_dir = Path(tempfile.mkdtemp(prefix="aimg-bench-"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
        self.launcher = EmbeddedServices(self.data_dir, env=self.env, say=lambda _m: None)
        self.exports = self.launcher.start()
        self.apps = []

    def settings_env(self, urls: list[str], **extra: str) -> dict:
        return {**self.exports, "AIMG_DATA_DIR": str(self.data_dir), "AIMG_COMFYUI_URLS": ",".join(urls),
                "AIMG_LOG_LEVEL": "WARNING", **extra}

    def app(self, urls: list[str], **extra: str):
        """An app on a database of its own; the earlier runs' databases are dropped first: the
        embedded MongoDB-protocol server keeps every database in one file and slows as it grows,
        so each run would otherwise measure a larger store than the one before."""
        import pymongo

        from aimg_app import create_app
        from aimg_app.config import load_settings

        base = self.exports["AIMG_MONGODB_URI"].rsplit("/", 1)[0]
        with pymongo.MongoClient(base, serverSelectionTimeoutMS=5000) as mongo:
            for earlier in range(len(self.apps)):
                mongo.drop_database(f"bench{earlier}")
        app = create_app(load_settings({**self.settings_env(urls, **extra),
                                        "AIMG_MONGODB_URI": f"{base}/bench{len(self.apps)}"}))
        self.apps.append(app)
        return app

    def close(self) -> None:
        for app in self.apps:
            app.extensions["aimg"].close()
        self.launcher.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _user(client, pro: bool = False) -> dict:
    """A new signed-in user's headers; ``pro``: with an admin grant of tier 1 (API2)."""
    h = {"X-Session-ID": str(uuid.uuid4())}
    email = f"b-{uuid.uuid4().hex[:10]}@example.com"
    resp = client.post("/createUser", json={"email": email, "password": "Bench-mark1!x"}, headers=h)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    if pro:
        from aimg_app.models import User
        from aimg_app.services.subscriptions import set_grant

        user = User.objects(email=email).first()
        set_grant(user.domain, user, "admin", f"bench:{user.id}", "bench", 1, True,
                  dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1), "bench", None, None)
    return h


class _Ends:
    """Run ends (completed / failed / cancelled) heard on the run events channel."""

    def __init__(self, connection):
        from aimg_app.services import runs

        self.ended: dict[str, float] = {}
        self._cond = threading.Condition()
        self._pubsub = connection.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(runs.EVENTS_CHANNEL)
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self):
        with contextlib.suppress(Exception):  # closed at the end of the run
            for message in self._pubsub.listen():
                event = json.loads(message["data"])
                if event.get("kind") in ("completed", "failed", "cancelled"):
                    with self._cond:
                        self.ended[event["workflowStateId"]] = time.time()
                        self._cond.notify_all()

    def wait(self, ids, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not all(i in self.ended for i in ids):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self):
        with contextlib.suppress(Exception):
            self._pubsub.close()


def _state_ids(item_ids: list[str]) -> list[str]:
    from aimg_app.models.item import Item

    return [i.job_id for i in Item.objects(id__in=item_ids).only("job_id")]


def whole_path(services: Services, n: int, render_seconds: float, servers: int, workers_per_server: int,
               prefetch: int | None = None) -> dict:
    from aimg_app import queueing
    from aimg_app.devservices.fake_comfyui import FakeComfyUI
    from aimg_app.models.item import Item
    from rq import Queue
    from workers.main import generation_queues

    fakes = [FakeComfyUI(render_seconds=render_seconds).start() for _ in range(servers)]
    processes = []
    try:
        urls = [f.url for f in fakes]
        app = services.app(urls)
        resources = app.extensions["aimg"]
        client = app.test_client()
        headers = [_user(client) for _ in range(n)]  # one user each: the per-user limit is not measured
        ids = []
        for h in headers:
            resp = client.post("/generateImage", json={"prompt": "benchmark", "seed": 1, "sampler": "Euler"}, headers=h)
            assert resp.status_code == 200, resp.get_data(as_text=True)
            ids.append(resp.get_json()["payload"]["imageID"])
        state_ids = _state_ids(ids)
        # Park the queued jobs until every worker is up, so that no server waits for a worker
        # process that is still importing.
        keys = [Queue(name, connection=resources.redis).key for name in generation_queues(resources)]
        parked = [k for k in keys if resources.redis.exists(k)]
        for key in parked:
            resources.redis.rename(key, f"bench:parked:{key}")
        resources.redis.delete(queueing.WORKERS_KEY)
        for _ in range(servers * workers_per_server):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "workers.main"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**services.env, **services.settings_env(urls), "AIMG_MIGRATE_ON_START": "false",
                     "AIMG_MONGODB_URI": resources.settings.mongodb_uri,  # the run's own database
                     **({"AIMG_GENERATION_PREFETCH": str(prefetch)} if prefetch is not None else {})}))
        deadline = time.monotonic() + 120
        while len(queueing.live_workers(resources.redis)) < len(processes) and time.monotonic() < deadline:
            time.sleep(0.05)
        ends = _Ends(resources.redis)
        for key in parked:
            resources.redis.rename(f"bench:parked:{key}", key)
        ends.wait(state_ids, 120 + n * render_seconds * 3)
        ends.close()
        failed = Item.objects(id__in=ids, status="failed").count()
        per_server = [f.stats.executed / _window([f]) for f in fakes if len(f.stats.runs) > 1]
        gaps = [g for f in fakes for g in f.stats.idle_gaps()]
        return {"perServerPerSecond": statistics.mean(per_server) if per_server else 0.0,
                "allPerSecond": n / _window(fakes), "failed": failed,
                "completed": Item.objects(id__in=ids, status="completed").count(),
                "meanIdleGapSeconds": sum(gaps) / len(gaps) if gaps else None,
                "executedPerServer": [f.stats.executed for f in fakes]}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        for fake in fakes:
            fake.stop()


class _CommandCounter:
    """Counts MongoDB commands, split by the thread that sent them (the API request runs on
    the main thread, the worker on its slot and helper threads)."""

    def __init__(self):
        import threading

        from pymongo import monitoring

        self.main = self.worker = 0
        self.main_ms = 0.0  # time the main thread's commands took, as the driver saw it
        self._main_thread = threading.main_thread()
        self._threading = threading
        counter = self

        class Listener(monitoring.CommandListener):
            def started(self, event):
                if counter._threading.current_thread() is counter._main_thread:
                    counter.main += 1
                else:
                    counter.worker += 1

            def succeeded(self, event):
                if counter._threading.current_thread() is counter._main_thread:
                    counter.main_ms += event.duration_micros / 1000

            def failed(self, event):
                pass

        monitoring.register(Listener())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def overhead(services: Services, counter: "_CommandCounter", n: int) -> dict:
    """One job at a time on one fake ComfyUI with render time 0, a worker in this process."""
    from rq.job import Job

    from aimg_app.devservices.fake_comfyui import FakeComfyUI
    from aimg_app.models.item import Item
    from aimg_app.models.workflow import WorkflowState
    from workers import jobs
    from workers.main import generation_queues

    fake = FakeComfyUI(render_seconds=0.0).start()
    stop = threading.Event()
    slots = []
    try:
        app = services.app([fake.url])
        client = app.test_client()
        resources = app.extensions["aimg"]
        slots = jobs.work_slots(resources, generation_queues(resources), stop)
        ends = _Ends(resources.redis)
        h = _user(client)
        pro = _user(client, pro=True)
        to_submit, to_complete, generate_ms, enqueue_ms, api_commands, worker_commands = [], [], [], [], [], []
        generate_mongo_ms, enqueue_mongo_ms = [], []  # of which the requests waited for MongoDB
        for index in range(n + 3):  # the first three warm the connections up
            api_before, worker_before, mongo_before = counter.main, counter.worker, counter.main_ms
            t0 = time.perf_counter()
            resp = client.post("/generateImage", json={"prompt": f"overhead {index}", "seed": index}, headers=h)
            generate = time.perf_counter() - t0
            api_after, generate_mongo = counter.main, counter.main_ms - mongo_before
            assert resp.status_code == 200, resp.get_data(as_text=True)
            item_id = resp.get_json()["payload"]["imageID"]
            state_id = _state_ids([item_id])[0]
            assert ends.wait([state_id], 30), "the job did not end"
            time.sleep(0.02)  # the worker's last writes (after its run event) land before counting
            worker_after = counter.worker
            state = WorkflowState.objects(id=state_id).only("prompt_id").first()
            item = Item.objects(id=item_id).only("status", "completed_date").first()
            assert item.status == "completed", item.status
            queued = Job.fetch(state_id, connection=resources.redis).enqueued_at.replace(tzinfo=dt.timezone.utc)
            # the second request of the pair: enqueueWorkflow, measured alone (its job runs too)
            mongo_before = counter.main_ms
            t1 = time.perf_counter()
            resp = client.post("/2/enqueueWorkflow", json={"workflowTemplateName": "txt2img-sd15",
                                                           "prompt": f"overhead {index}"}, headers=pro)
            enqueue = time.perf_counter() - t1
            enqueue_mongo = counter.main_ms - mongo_before
            assert resp.status_code == 200, resp.get_data(as_text=True)
            assert ends.wait(_state_ids(resp.get_json()["payload"]["itemIds"]), 30)
            if index < 3:
                continue
            completed = item.completed_date.replace(tzinfo=dt.timezone.utc).timestamp()
            to_submit.append(fake.stats.accepted_at[state.prompt_id] - queued.timestamp())
            to_complete.append(completed - fake.stats.finished_at[state.prompt_id])
            generate_ms.append(generate * 1000)
            enqueue_ms.append(enqueue * 1000)
            generate_mongo_ms.append(generate_mongo)
            enqueue_mongo_ms.append(enqueue_mongo)
            api_commands.append(api_after - api_before)
            worker_commands.append(worker_after - worker_before)
        ends.close()
        ms = lambda xs: {"median": 1000 * statistics.median(xs), "p95": 1000 * _pct(xs, 0.95)}  # noqa: E731
        return {"queuedToSubmittedMs": ms(to_submit), "doneToCompletedMs": ms(to_complete),
                "totalMs": ms([a + b for a, b in zip(to_submit, to_complete)]),
                "generateMs": {"median": statistics.median(generate_ms), "p95": _pct(generate_ms, 0.95),
                               "mongo": statistics.median(generate_mongo_ms),
                               "rest": statistics.median([a - b for a, b in zip(generate_ms, generate_mongo_ms)])},
                "enqueueMs": {"median": statistics.median(enqueue_ms), "p95": _pct(enqueue_ms, 0.95),
                              "mongo": statistics.median(enqueue_mongo_ms),
                              "rest": statistics.median([a - b for a, b in zip(enqueue_ms, enqueue_mongo_ms)])},
                "apiCommandsPerJob": statistics.median(api_commands),
                "workerCommandsPerJob": statistics.median(worker_commands)}
    finally:
        stop.set()
        for slot in slots:
            slot.join(10)
        fake.stop()


def _units(graph: dict) -> float:
    """A graph's size as the ETA counts it: pixels x steps x images, relative to 512x512, 20 steps."""
    latent = next((n["inputs"] for n in graph.values() if n.get("class_type") == "EmptyLatentImage"), {})
    sampler = next((n["inputs"] for n in graph.values() if n.get("class_type") == "KSampler"), {})
    return (int(latent.get("width", 512)) * int(latent.get("height", 512)) / (512 * 512)
            * int(sampler.get("steps", 20)) / 20 * int(latent.get("batch_size", 1)))


def _sized_fake(seconds_per_unit: float):
    from aimg_app.devservices.fake_comfyui import FakeComfyUI

    class SizedFake(FakeComfyUI):
        """A fake GPU whose render time grows with the run's size (as a real one's does)."""

        async def _execute(self, prompt):
            self.render_seconds = seconds_per_unit * _units(prompt.graph)
            await super()._execute(prompt)

    return SizedFake(render_seconds=seconds_per_unit).start()


ETA_SIZES = ((512, 512, 10), (512, 512, 20), (768, 768, 20), (512, 768, 30))


def eta_error(services: Services, n: int, seconds_per_unit: float) -> dict:
    """Mean absolute error of ``estimatedSecondsRemaining`` read right after each enqueue of a
    mixed-size batch, against when each run really ended (one server, one worker)."""
    import random

    from workers import jobs
    from workers.main import generation_queues

    fake = _sized_fake(seconds_per_unit)
    stop = threading.Event()
    slots = []
    try:
        app = services.app([fake.url])
        client = app.test_client()
        resources = app.extensions["aimg"]
        resources.redis.delete("aimg:eta:seconds-per-unit")
        ends = _Ends(resources.redis)
        slots = jobs.work_slots(resources, generation_queues(resources), stop)
        users = [_user(client, pro=True) for _ in range(max(n, len(ETA_SIZES)))]

        def enqueue(user, size):
            width, height, steps = size
            resp = client.post("/2/enqueueWorkflow", json={"workflowTemplateName": "txt2img-sd15", "prompt": "eta",
                                                           "width": width, "height": height, "steps": steps},
                               headers=user)
            assert resp.status_code == 200, resp.get_data(as_text=True)
            return resp.get_json()["payload"]

        # Learn: one run of each size, one at a time.
        for user, size in zip(users, ETA_SIZES):
            answer = enqueue(user, size)
            assert ends.wait(_state_ids(answer["itemIds"]), 60)
        rng = random.Random(11)
        sizes = [rng.choice(ETA_SIZES) for _ in range(n)]
        asked = []
        for user, size in zip(users, sizes):
            answer = enqueue(user, size)
            status = client.get(f"/2/getWorkflowStatus?workflowId={answer['workflowId']}", headers=user).get_json()
            asked.append((time.time(), (status.get("payload") or {}).get("estimatedSecondsRemaining"),
                          _state_ids(answer["itemIds"])[0]))
        assert ends.wait([sid for _, _, sid in asked], 120 + n * seconds_per_unit * 10)
        errors = [abs(eta - (ends.ended[sid] - at)) for at, eta, sid in asked if eta is not None]
        actual = [ends.ended[sid] - at for at, _, sid in asked]
        ends.close()
        return {"mae": statistics.mean(errors) if errors else None, "estimated": len(errors), "runs": n,
                "meanActual": statistics.mean(actual)}
    finally:
        stop.set()
        for slot in slots:
            slot.join(10)
        fake.stop()


BASELINE = {  # before the fleet work, for the closing note (same benchmark, same machine class)
    "ratio": "0.54 (1 server, 1 worker), 0.915 (2 workers)", "idle": "169 ms", "total": "132 ms",
    "commands": "24 (7 API + 17 worker)", "generate": "41-54 ms"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=60, help="generations per throughput run")
    parser.add_argument("--render-seconds", type=float, default=0.2, help="fixed render time of the fake ComfyUI")
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 3], help="fake ComfyUI servers (each a run)")
    parser.add_argument("--workers-per-server", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--prefetch", type=int, default=None, help="AIMG_GENERATION_PREFETCH of the workers "
                        "(default: the setting's default)")
    parser.add_argument("--overhead", type=int, default=30, help="jobs of the per-job overhead run")
    parser.add_argument("--eta-runs", type=int, default=12, help="runs of the mixed-size ETA batch")
    parser.add_argument("--only", choices=("throughput", "overhead", "eta"), nargs="+",
                        default=["throughput", "overhead", "eta"])
    args = parser.parse_args(argv)
    counter = _CommandCounter()  # before any MongoClient exists
    services = Services()
    lines = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    try:
        if "throughput" in args.only:
            say(f"throughput: N={args.n} per run, render {args.render_seconds} s; per server: jobs over its first "
                "start to last end")
            for servers in args.servers:
                for per_server in args.workers_per_server:
                    straight = direct(args.n, args.render_seconds)
                    full = whole_path(services, args.n, args.render_seconds, servers, per_server, args.prefetch)
                    ratio = full["perServerPerSecond"] / straight["perSecond"]
                    gap = full["meanIdleGapSeconds"]
                    say(f"  {servers} server(s) x {per_server} worker(s): ratio {ratio:.3f} (target >= 0.97)  "
                        f"idle gap {gap * 1000 if gap is not None else float('nan'):.1f} ms (target <= 5)  "
                        f"[{full['perServerPerSecond']:.2f} vs {straight['perSecond']:.2f} jobs/s per server; all "
                        f"servers {full['allPerSecond']:.2f}; {full['completed']} completed, {full['failed']} failed, "
                        f"jobs per server {full['executedPerServer']}]")
        if "overhead" in args.only:
            o = overhead(services, counter, args.overhead)
            say(f"per-job overhead over {args.overhead} jobs (render 0, one at a time, embedded services):")
            for key, label, target in (("queuedToSubmittedMs", "queued -> submitted", ""),
                                       ("doneToCompletedMs", "done -> completed", ""),
                                       ("totalMs", "total overhead", " (target median <= 50 ms)"),
                                       ("generateMs", "generateImage", " (target median <= 20 ms)"),
                                       ("enqueueMs", "enqueueWorkflow", " (target median <= 20 ms)")):
                split = (f"; of the median, waiting for MongoDB {o[key]['mongo']:.1f} ms, the rest "
                         f"{o[key]['rest']:.1f} ms" if "mongo" in o[key] else "")
                say(f"  {label:20}: median {o[key]['median']:.1f} ms, p95 {o[key]['p95']:.1f} ms{target}{split}")
            total = o["apiCommandsPerJob"] + o["workerCommandsPerJob"]
            say(f"  MongoDB commands    : {total:g} per job ({o['apiCommandsPerJob']:g} by the API request, "
                f"{o['workerCommandsPerJob']:g} by the worker) (target <= 12, half of 24 before)")
        if "eta" in args.only:
            e = eta_error(services, args.eta_runs, args.render_seconds / 2)
            mae = f"{e['mae']:.2f} s" if e["mae"] is not None else "n/a"
            say(f"ETA mean absolute error: {mae} over {e['estimated']}/{e['runs']} mixed-size runs "
                f"(mean actual time to done {e['meanActual']:.2f} s; sizes {ETA_SIZES} as (w, h, steps))")
        say("before the fleet work: ratio " + BASELINE["ratio"] + ", idle gap " + BASELINE["idle"]
            + ", total overhead median " + BASELINE["total"] + ", MongoDB commands " + BASELINE["commands"]
            + ", generateImage " + BASELINE["generate"])
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
