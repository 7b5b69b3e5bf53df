"""gunicorn settings of the AIMG API: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app``.

Every knob reads an environment variable, so the compose file (or a unit file) sets them.
Logs: gunicorn's error and access lines go through the application's JSON logging, one
line per record on stderr, the access lines with the request id the application answered.
Metrics: the API processes (and workers on the same host) share ``PROMETHEUS_MULTIPROC_DIR``;
a dead process's live gauges are dropped.
"""
import os
import tempfile
from pathlib import Path

from aimg_app.jsonlog import logging_config

bind = os.environ.get("AIMG_BIND", "0.0.0.0:8000")
# Requests mostly wait on MongoDB, PostgreSQL and Redis: a few threads per process.
workers = int(os.environ.get("AIMG_API_PROCESSES", "2"))
worker_class = "gthread"
threads = int(os.environ.get("AIMG_API_THREADS", "4"))
timeout = int(os.environ.get("AIMG_API_TIMEOUT_S", "60"))
# A SIGTERM lets requests in flight finish for this long; then the process is stopped.
graceful_timeout = int(os.environ.get("AIMG_API_GRACEFUL_S", "5"))
keepalive = 5
# No runtime control socket: nothing manages gunicorn but its signals.
control_socket_disable = True
max_requests = int(os.environ.get("AIMG_API_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(D)sus %({x-request-id}o)s'
logconfig_dict = logging_config(os.environ.get("AIMG_LOG_LEVEL", "INFO").upper())


def on_starting(server):
    # prometheus-client's multiprocess mode: one directory per host, emptied at start.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="aimg-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def worker_exit(server, worker):
    # Close the pools while the databases still answer: no warnings, no half-open connections.
    app = getattr(worker, "wsgi", None)
    resources = getattr(app, "extensions", {}).get("aimg") if app is not None else None
    if resources is not None:
        resources.close()
    if getattr(worker, "booted", False):
        # Everything is closed and flushed: skip the interpreter's exit handlers, where
        # pymongo joins its monitor threads for up to a second each. (A worker that failed to
        # boot exits the normal way, with the status that tells the master to stop.)
        import logging

        logging.shutdown()
        os._exit(0)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
