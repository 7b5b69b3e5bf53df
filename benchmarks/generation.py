"""Generation throughput and per-job overhead: the whole path against ComfyUI alone.

Throughput: N generations through HTTP (the Flask app) -> Redis -> ``aimg`` worker
processes -> fake ComfyUI servers with a fixed render time, and, in the same run, the same
N prompts posted straight to one fake ComfyUI. Prints both throughputs, their ratio, and
the mean idle gap of a ComfyUI server between two jobs (what the workers cost the GPU).

Overhead (``--overhead N``, render time 0, one job at a time, a worker in this process):
the median and p95 of queued -> submitted to ComfyUI and of ComfyUI done -> Item completed,
the generateImage latency, and the MongoDB commands one job costs (pymongo command
monitoring: the API request's and the worker's, counted apart).

    .venv/bin/python -m benchmarks.generation -n 40 --render-seconds 0.2 --servers 1 --workers-per-server 1
    .venv/bin/python -m benchmarks.generation --overhead 40 --skip-throughput
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
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
        started = time.perf_counter()
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


def whole_path(n: int, render_seconds: float, servers: int, workers_per_server: int, prefetch: int = 1) -> dict:
    from aimg_app import create_app
    from aimg_app.config import load_settings
    from aimg_app.devservices import EmbeddedServices
    from aimg_app.devservices.fake_comfyui import FakeComfyUI
    from aimg_app.models.item import Item

    data_dir = Path(tempfile.mkdtemp(prefix="aimg-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    launcher = EmbeddedServices(data_dir, env=env, say=lambda _m: None)
    exports = launcher.start()
    fakes = [FakeComfyUI(render_seconds=render_seconds).start() for _ in range(servers)]
    processes = []
    app = None
    try:
        settings_env = {**exports, "AIMG_DATA_DIR": str(data_dir), "AIMG_COMFYUI_URLS": ",".join(f.url for f in fakes),
                        "AIMG_LOG_LEVEL": "WARNING", "AIMG_GENERATION_PREFETCH": str(prefetch)}
        settings = load_settings(settings_env)
        app = create_app(settings)
        client = app.test_client()
        # One user per generation: the per-user concurrency limit is not what is measured.
        headers = []
        for _ in range(n):
            h = {"X-Session-ID": str(uuid.uuid4())}
            resp = client.post("/createUser", json={"email": f"b-{uuid.uuid4().hex[:8]}@example.com",
                                                    "password": "Bench-mark1!x"}, headers=h)
            assert resp.status_code == 200, resp.get_data(as_text=True)
            headers.append(h)
        # Everything is queued before the workers start: what is measured is how busy they
        # keep the servers, not how fast this one process can post requests.
        latencies = []
        ids = []
        for h in headers:
            t0 = time.perf_counter()
            resp = client.post("/generateImage", json={"prompt": "benchmark", "seed": 1, "sampler": "Euler"}, headers=h)
            latencies.append(time.perf_counter() - t0)
            assert resp.status_code == 200, resp.get_data(as_text=True)
            ids.append(resp.get_json()["payload"]["imageID"])
        for _ in range(servers * workers_per_server):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "workers.main"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**env, **settings_env, "AIMG_MIGRATE_ON_START": "false"}))
        deadline = time.monotonic() + 120 + n * render_seconds * 3
        while time.monotonic() < deadline:
            done = Item.objects(id__in=ids, status__in=("completed", "failed")).count()
            if done == n:
                break
            time.sleep(0.05)
        elapsed = _window(fakes)
        failed = Item.objects(id__in=ids, status="failed").count()
        gaps = [g for f in fakes for g in f.stats.idle_gaps()]
        return {"seconds": elapsed, "perSecond": n / elapsed, "failed": failed,
                "completed": Item.objects(id__in=ids, status="completed").count(),
                "meanIdleGapSeconds": sum(gaps) / len(gaps) if gaps else None,
                "meanSubmitLatencyMs": 1000 * sum(latencies) / len(latencies),
                "medianSubmitLatencyMs": 1000 * statistics.median(latencies),
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
        if app is not None:
            app.extensions["aimg"].close()
        launcher.stop()


class _CommandCounter:
    """Counts MongoDB commands, split by the thread that sent them (the API request runs on
    the main thread, the worker on its slot and helper threads)."""

    def __init__(self):
        import threading

        from pymongo import monitoring

        self.main = self.worker = 0
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
                pass

            def failed(self, event):
                pass

        monitoring.register(Listener())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def overhead(n: int) -> dict:
    """One job at a time on one fake ComfyUI with render time 0, a worker in this process."""
    import threading

    counter = _CommandCounter()  # before any MongoClient exists
    from aimg_app import create_app
    from aimg_app.config import load_settings
    from aimg_app.devservices import EmbeddedServices
    from aimg_app.devservices.fake_comfyui import FakeComfyUI
    from aimg_app.models.item import Item
    from aimg_app.models.workflow import WorkflowState
    from workers import jobs
    from workers.main import generation_queues

    data_dir = Path(tempfile.mkdtemp(prefix="aimg-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    launcher = EmbeddedServices(data_dir, env=env, say=lambda _m: None)
    exports = launcher.start()
    fake = FakeComfyUI(render_seconds=0.0).start()
    app = None
    stop = threading.Event()
    try:
        settings = load_settings({**exports, "AIMG_DATA_DIR": str(data_dir), "AIMG_COMFYUI_URLS": fake.url,
                                  "AIMG_LOG_LEVEL": "WARNING"})
        app = create_app(settings)
        client = app.test_client()
        resources = app.extensions["aimg"]
        slots = jobs.work_slots(resources, generation_queues(resources), stop)
        h = {"X-Session-ID": str(uuid.uuid4())}
        resp = client.post("/createUser", json={"email": f"o-{uuid.uuid4().hex[:8]}@example.com",
                                                "password": "Bench-mark1!x"}, headers=h)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        to_submit, to_complete, enqueue_ms, api_commands, worker_commands = [], [], [], [], []
        for index in range(n + 3):  # the first three warm the connections up
            api_before, worker_before = counter.main, counter.worker
            t0 = time.time()
            resp = client.post("/generateImage", json={"prompt": f"overhead {index}", "seed": index}, headers=h)
            enqueue = time.time() - t0
            api_after = counter.main
            assert resp.status_code == 200, resp.get_data(as_text=True)
            item_id = resp.get_json()["payload"]["imageID"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                item = Item.objects(id=item_id).only("status", "completed_date").first()
                if item.status in ("completed", "failed"):
                    break
                time.sleep(0.002)
            assert item.status == "completed", item.status
            time.sleep(0.05)  # let the worker's last writes land before counting
            state = WorkflowState.objects(item_ids=item_id).only("prompt_id").first()
            if index < 3:
                continue
            completed = item.completed_date.replace(tzinfo=dt.timezone.utc).timestamp()
            to_submit.append(fake.stats.accepted_at[state.prompt_id] - t0)
            to_complete.append(completed - fake.stats.finished_at[state.prompt_id])
            enqueue_ms.append(enqueue * 1000)
            api_commands.append(api_after - api_before)
            worker_commands.append(counter.worker - worker_before)
        ms = lambda xs: {"median": 1000 * statistics.median(xs), "p95": 1000 * _pct(xs, 0.95)}  # noqa: E731
        return {"queuedToSubmittedMs": ms(to_submit), "doneToCompletedMs": ms(to_complete),
                "totalMs": ms([a + b for a, b in zip(to_submit, to_complete)]),
                "enqueueMs": {"median": statistics.median(enqueue_ms), "p95": _pct(enqueue_ms, 0.95)},
                "apiCommandsPerJob": statistics.median(api_commands),
                "workerCommandsPerJob": statistics.median(worker_commands)}
    finally:
        stop.set()
        for slot in locals().get("slots", []):
            slot.join(10)
        fake.stop()
        if app is not None:
            app.extensions["aimg"].close()
        launcher.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=40, help="generations")
    parser.add_argument("--render-seconds", type=float, default=0.2, help="fixed render time of the fake ComfyUI")
    parser.add_argument("--servers", type=int, default=1, help="fake ComfyUI servers")
    parser.add_argument("--workers-per-server", type=int, default=1)
    parser.add_argument("--prefetch", type=int, default=1, help="AIMG_GENERATION_PREFETCH of the workers")
    parser.add_argument("--overhead", type=int, default=0, help="also measure per-job overhead over this many jobs")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    if args.overhead:
        o = overhead(args.overhead)
        print(f"per-job overhead over {args.overhead} jobs (render 0, one at a time):")
        for key, label in (("queuedToSubmittedMs", "queued -> submitted"), ("doneToCompletedMs", "done -> completed"),
                           ("totalMs", "total overhead"), ("enqueueMs", "generateImage")):
            print(f"  {label:20}: median {o[key]['median']:.1f} ms, p95 {o[key]['p95']:.1f} ms")
        print(f"  MongoDB commands    : {o['apiCommandsPerJob']:g} by the API request, "
              f"{o['workerCommandsPerJob']:g} by the worker, per job")
    if args.skip_throughput:
        return 0
    straight = direct(args.n, args.render_seconds)
    full = whole_path(args.n, args.render_seconds, args.servers, args.workers_per_server, args.prefetch)
    ideal = straight["perSecond"] * args.servers
    print(f"N={args.n} render={args.render_seconds}s servers={args.servers} "
          f"workers/server={args.workers_per_server} prefetch={args.prefetch}")
    print(f"straight to ComfyUI : {straight['perSecond']:.2f} jobs/s (x{args.servers} servers = {ideal:.2f})")
    print(f"whole path          : {full['perSecond']:.2f} jobs/s  ({full['completed']} completed, {full['failed']} failed)"
          " (first start to last end on the servers, both)")
    print(f"ratio               : {full['perSecond'] / ideal:.3f}")
    gap = full["meanIdleGapSeconds"]
    print(f"mean idle gap       : {gap * 1000:.1f} ms between two jobs on a server" if gap is not None else
          "mean idle gap       : n/a")
    print(f"submit latency      : {full['medianSubmitLatencyMs']:.1f} ms median, {full['meanSubmitLatencyMs']:.1f} ms "
          "mean (generateImage, in-process HTTP)")
    print(f"jobs per server     : {full['executedPerServer']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
