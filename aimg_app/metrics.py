"""Prometheus metrics of the API and the workers (prometheus-client).

Under gunicorn, or whenever several processes of a host should be scraped as one, set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by those processes (API processes
and workers alike): each writes its samples there and ``GET /metrics`` of any API process
serves them all. Queue lengths and ComfyUI servers' state are read from Redis at scrape time.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REQUESTS = Counter("aimg_http_requests_total", "API requests answered", ["endpoint", "method", "status"])
LATENCY = Histogram("aimg_http_request_duration_seconds", "API request latency", ["endpoint"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
JOBS = Counter("aimg_jobs_total", "Jobs a worker ran, by queue and outcome", ["queue", "outcome"])
JOB_PHASE = Histogram("aimg_job_phase_seconds", "Generation job phases: queue_wait, submit (claim to prompt accepted), comfyui (claim to outputs, submit included), storing",
                      ["phase"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
WEBHOOKS = Counter("aimg_webhook_deliveries_total", "Payment webhook deliveries, by processor and outcome",
                   ["processor", "outcome"])


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def observe_phase(phase: str, seconds: float) -> None:
    JOB_PHASE.labels(phase).observe(max(0.0, seconds))


@contextmanager
def phase(name: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        observe_phase(name, time.perf_counter() - started)


class LiveCollector:
    """Read at scrape time: generation queue lengths and the ComfyUI servers' state."""

    def __init__(self, resources):
        self.resources = resources

    def collect(self):
        from rq import Queue

        queues = GaugeMetricFamily("aimg_queue_length", "Jobs waiting in each queue", labels=["queue"])
        up = GaugeMetricFamily("aimg_comfyui_up", "ComfyUI server healthy (1), down (0), unknown (-1)",
                               labels=["server"])
        busy = GaugeMetricFamily("aimg_comfyui_runs_in_flight", "Runs a ComfyUI server is executing "
                                 "(busy fraction: avg_over_time of this > 0)", labels=["server"])
        try:
            connection = self.resources.redis
            names = sorted(n.decode().removeprefix("rq:queue:") for n in connection.smembers("rq:queues"))
            for name in names:
                queues.add_metric([name], Queue(name, connection=connection).count)
            now = time.time()
            for url in self.resources.settings.comfyui_urls:
                state = (0 if connection.exists(f"aimg:comfy:down:{url}")
                         else 1 if connection.exists(f"aimg:comfy:up:{url}") else -1)
                up.add_metric([url], state)
                busy.add_metric([url], connection.zcount(f"aimg:comfy:load:{url}", now, "+inf"))
        except Exception:  # noqa: BLE001 - a scrape without Redis still serves the process's own metrics
            pass
        yield queues
        yield up
        yield busy


def serve(resources, port: int, addr: str = "0.0.0.0") -> None:
    """A worker's own ``/metrics`` port: its samples (every process of the host's in
    multiprocess mode) and the live queue/ComfyUI gauges."""
    from prometheus_client import REGISTRY, multiprocess as mp, start_http_server

    registry = CollectorRegistry() if multiprocess() else REGISTRY
    if multiprocess():
        mp.MultiProcessCollector(registry)
    registry.register(LiveCollector(resources))
    start_http_server(port, addr=addr, registry=registry)


def render(resources) -> bytes:
    from prometheus_client import REGISTRY, multiprocess as mp

    live = CollectorRegistry()
    live.register(LiveCollector(resources))
    if multiprocess():
        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)
        own = generate_latest(registry)
    else:
        own = generate_latest(REGISTRY)
    return own + generate_latest(live)
