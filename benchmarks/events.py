"""GET /events under load: N concurrent Server-Sent Event streams on a threaded server, a
publisher appending events the way a worker reports progress; events delivered per second
and the latency from ``publish`` to the client reading the event.

    .venv/bin/python -m benchmarks.events --streams 200 --rounds 20 --interval 0.05
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _client(session, url: str, sid: str, expected: int, latencies: list[float], ready: asyncio.Event,
                  counter: list[int]) -> int:
    got = 0
    async with session.get(url, headers={"X-Session-ID": sid}) as response:
        counter[0] += 1
        if counter[0] >= counter[1]:
            ready.set()
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                sent = json.loads(line[6:])["sentAt"]
                latencies.append(time.time() - sent)
                got += 1
                if got >= expected:
                    return got
    return got


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20, help="events per stream")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between rounds")
    args = parser.parse_args()

    import aiohttp
    from werkzeug.serving import make_server

    from aimg_app import create_app
    from aimg_app.config import load_settings
    from aimg_app.devservices import EmbeddedServices
    from aimg_app.services import events
    from aimg_app.services.generation import anonymous_owner

    with tempfile.TemporaryDirectory(prefix="aimg-bench-events-") as tmp:
        env = {k: v for k, v in os.environ.items() if k.startswith("AIMG_")}
        launcher = EmbeddedServices(Path(tmp), env=dict(os.environ), only={"mongodb", "redis"}, say=lambda _m: None)
        env.update(launcher.start())
        try:
            settings = load_settings({**env, "AIMG_DATA_DIR": tmp}, migrate_on_start=False)
            app = create_app(settings)
            server = make_server("127.0.0.1", 0, app, threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            url = f"http://127.0.0.1:{server.server_port}/events"
            redis = app.extensions["aimg"].redis
            sids = [str(uuid.uuid4()) for _ in range(args.streams)]
            owners = [anonymous_owner(sid) for sid in sids]

            async def run() -> tuple[float, list[float], int]:
                latencies: list[float] = []
                ready = asyncio.Event()
                counter = [0, args.streams]
                timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
                connector = aiohttp.TCPConnector(limit=0)
                async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
                    tasks = [asyncio.create_task(_client(session, url, sid, args.rounds, latencies, ready, counter))
                             for sid in sids]
                    await asyncio.wait_for(ready.wait(), 60)
                    await asyncio.sleep(0.5)  # every stream past its first read

                    def publish_all():
                        for _ in range(args.rounds):
                            for owner in owners:
                                events.publish(redis, owner, "progress", {"sentAt": time.time(), "progress": 0.5})
                            time.sleep(args.interval)

                    started = time.perf_counter()
                    await asyncio.to_thread(publish_all)
                    delivered = sum(await asyncio.wait_for(asyncio.gather(*tasks), 120))
                    return time.perf_counter() - started, latencies, delivered

            elapsed, latencies, delivered = asyncio.run(run())
            server.shutdown()
            app.extensions["aimg"].close()
        finally:
            launcher.stop()
    print(f"streams: {args.streams}, events per stream: {args.rounds}, delivered: {delivered} "
          f"of {args.streams * args.rounds}")
    print(f"delivered per second: {delivered / elapsed:,.0f}  (publishing paced at {args.interval}s per round)")
    print(f"latency publish -> client: p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {_percentile(latencies, 0.95) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
