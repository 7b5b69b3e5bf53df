"""Generation throughput: the whole path against ComfyUI alone.

Runs N generations through HTTP (the Flask app) -> RQ -> ``aimg`` worker processes -> a
fake ComfyUI with a fixed render time, and, in the same run, the same N prompts posted
straight to a fake ComfyUI. Prints both throughputs, their ratio, and the mean idle gap of
a ComfyUI server between two jobs (what the workers cost the GPU).

    .venv/bin/python -m benchmarks.generation -n 40 --render-seconds 0.2 --servers 1
"""
from __future__ import annotations

import argparse
import json
import os
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
    from aimg_app.services.workflows import substitute

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
        elapsed = time.perf_counter() - started
        return {"seconds": elapsed, "perSecond": n / elapsed, **fake.stats.as_dict()}


def whole_path(n: int, render_seconds: float, servers: int, workers_per_server: int) -> dict:
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
                        "AIMG_LOG_LEVEL": "WARNING"}
        settings = load_settings(settings_env)
        app = create_app(settings)
        client = app.test_client()
        for _ in range(servers * workers_per_server):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "workers.main"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**env, **settings_env, "AIMG_MIGRATE_ON_START": "false"}))
        # One user per generation: the per-user concurrency limit is not what is measured.
        headers = []
        for _ in range(n):
            h = {"X-Session-ID": str(uuid.uuid4())}
            resp = client.post("/createUser", json={"email": f"b-{uuid.uuid4().hex[:8]}@example.com",
                                                    "password": "Bench-mark1!x"}, headers=h)
            assert resp.status_code == 200, resp.get_data(as_text=True)
            headers.append(h)
        time.sleep(2)  # the workers are up and listening
        latencies = []
        started = time.perf_counter()
        ids = []
        for h in headers:
            t0 = time.perf_counter()
            resp = client.post("/generateImage", json={"prompt": "benchmark", "seed": 1, "sampler": "Euler"}, headers=h)
            latencies.append(time.perf_counter() - t0)
            assert resp.status_code == 200, resp.get_data(as_text=True)
            ids.append(resp.get_json()["payload"]["imageID"])
        deadline = time.monotonic() + 60 + n * render_seconds * 3
        while time.monotonic() < deadline:
            done = Item.objects(id__in=ids, status__in=("completed", "failed")).count()
            if done == n:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        failed = Item.objects(id__in=ids, status="failed").count()
        gaps = [g for f in fakes for g in f.stats.idle_gaps()]
        return {"seconds": elapsed, "perSecond": n / elapsed, "failed": failed,
                "completed": Item.objects(id__in=ids, status="completed").count(),
                "meanIdleGapSeconds": sum(gaps) / len(gaps) if gaps else None,
                "meanSubmitLatencyMs": 1000 * sum(latencies) / len(latencies),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=40, help="generations")
    parser.add_argument("--render-seconds", type=float, default=0.2, help="fixed render time of the fake ComfyUI")
    parser.add_argument("--servers", type=int, default=1, help="fake ComfyUI servers")
    parser.add_argument("--workers-per-server", type=int, default=1)
    args = parser.parse_args(argv)
    straight = direct(args.n, args.render_seconds)
    full = whole_path(args.n, args.render_seconds, args.servers, args.workers_per_server)
    ideal = straight["perSecond"] * args.servers
    print(f"N={args.n} render={args.render_seconds}s servers={args.servers} "
          f"workers/server={args.workers_per_server}")
    print(f"straight to ComfyUI : {straight['perSecond']:.2f} jobs/s (x{args.servers} servers = {ideal:.2f})")
    print(f"whole path          : {full['perSecond']:.2f} jobs/s  ({full['completed']} completed, {full['failed']} failed)")
    print(f"ratio               : {full['perSecond'] / ideal:.3f}")
    gap = full["meanIdleGapSeconds"]
    print(f"mean idle gap       : {gap * 1000:.1f} ms between two jobs on a server" if gap is not None else
          "mean idle gap       : n/a")
    print(f"submit latency      : {full['meanSubmitLatencyMs']:.1f} ms mean (generateImage, in-process HTTP)")
    print(f"jobs per server     : {full['executedPerServer']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
