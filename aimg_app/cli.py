"""The ``aimg`` command."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from typing import Iterator

from .config import Settings, load_settings
from .devservices.service import ServiceFailed


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _port_busy(host: str, port: int) -> bool:
    import errno
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _say_port_busy(host: str, port: int) -> int:
    _say(f"aimg: port {port} on {host} is already in use; stop what listens there or pick another with --port")
    return 2


def _stop_on_sigterm() -> None:
    # Ctrl-C and SIGTERM both unwind through ``finally``, which stops the services.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))


@contextlib.contextmanager
def embedded_services(only: set[str] | None = None) -> Iterator[Settings]:
    """Settings whose unconfigured services run embedded: reused when another ``aimg``
    launcher owns this data dir, else started here (and stopped on exit)."""
    from .devservices import EmbeddedServices

    base = load_settings()
    env = dict(os.environ)
    launcher = EmbeddedServices(base.data_dir, env=env, only=only, say=_say)
    _say(f"AIMG data directory: {base.data_dir}")
    try:
        exported = launcher.start()
        env.update(exported)
        os.environ.update({k: v for k, v in env.items() if k.startswith("AIMG_")})
        yield load_settings(env)
    finally:
        if launcher.running:
            _say("stopping embedded services...")
        launcher.stop()


@contextlib.contextmanager
def development_children(settings: Settings, *, fake_comfyui: bool, worker: bool) -> Iterator[Settings]:
    """What makes generation work on a first run: a fake ComfyUI (unless AIMG_COMFYUI_URLS names
    real ones), one worker, and an admin key when none is configured. Stopped on exit."""
    import secrets
    import subprocess

    children: list[subprocess.Popen] = []
    if not settings.admin_keys:
        key_file = settings.data_dir / "dev-admin-key"
        if not key_file.exists():
            key_file.write_text(f"dev-{secrets.token_urlsafe(24)}")
            key_file.chmod(0o600)
        settings.admin_keys = {"dev": key_file.read_text().strip()}
        os.environ["AIMG_ADMIN_KEYS"] = f"dev:{settings.admin_keys['dev']}"
        _say(f"  admin key  X-Administration-Key: {settings.admin_keys['dev']}  (development only; "
             "set AIMG_ADMIN_KEYS to choose your own)")
    try:
        if fake_comfyui and not settings.comfyui_urls:
            from .devservices.service import free_port

            port = free_port()
            children.append(subprocess.Popen([sys.executable, "-m", "aimg_app", "fake-comfyui", "--port", str(port),
                                              "--render-seconds", "0.5"]))
            settings.comfyui_urls = (f"http://127.0.0.1:{port}",)
            os.environ["AIMG_COMFYUI_URLS"] = settings.comfyui_urls[0]
            _say(f"  comfyui    {settings.comfyui_urls[0]}  (fake: Pillow renders; --no-fake-comfyui or "
                 "AIMG_COMFYUI_URLS to use real servers)")
        if worker and settings.comfyui_urls:
            children.append(subprocess.Popen([sys.executable, "-m", "aimg_app", "worker"]))
            _say(f"  worker     1 generation worker on {', '.join(settings.comfyui_urls)}  (--no-worker to run your own)")
        yield settings
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()


REQUIRED_BY_WORKERS = ("AIMG_MONGODB_URI", "AIMG_REDIS_URL", "AIMG_SEAWEEDFS_URL")


def attached_services(required: tuple[str, ...] = REQUIRED_BY_WORKERS) -> Settings:
    """Settings of a process that starts no service: the configured URLs, completed from
    the registry of the launcher that owns ``AIMG_DATA_DIR``. Says what it used."""
    from .devservices import describe_registry, running_services_env

    base = load_settings()
    env = dict(os.environ)
    found = running_services_env(base.data_dir)
    for key, value in found.items():
        env.setdefault(key, value)
    missing = [name for name in required if not env.get(name)]
    if missing:
        raise ValueError(f"{', '.join(missing)} not set, and {describe_registry(base.data_dir)}; "
                         "set AIMG_DATA_DIR to the data directory of a running `aimg serve` or `aimg services`, "
                         "or configure the services")
    if found:
        _say(f"using {describe_registry(base.data_dir)}")
    os.environ.update({k: v for k, v in env.items() if k.startswith("AIMG_")})
    return load_settings(env)


def cmd_serve(args) -> int:
    from werkzeug.serving import make_server

    from . import create_app

    if _port_busy(args.host, args.port):
        return _say_port_busy(args.host, args.port)
    _stop_on_sigterm()
    try:
        with embedded_services() as settings, development_children(
                settings, fake_comfyui=args.fake_comfyui, worker=args.worker) as settings:
            app = create_app(settings)
            try:
                server = make_server(args.host, args.port, app, threaded=True)
                server.daemon_threads = True  # a request in flight does not hold the exit up
                _say(f"  api        http://{args.host}:{args.port}/  (docs: /docs, OpenAPI: /openapi.json)")
                try:
                    server.serve_forever(poll_interval=0.2)
                finally:
                    server.server_close()
            finally:
                app.extensions["aimg"].close()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_services(args) -> int:
    _stop_on_sigterm()
    try:
        with embedded_services():
            _say("embedded services are running; Ctrl-C stops them")
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_migrate(args) -> int:
    from .resources import Resources

    _stop_on_sigterm()
    with embedded_services(only={"mongodb", "postgres"}) as settings:
        resources = Resources(settings)
        try:
            applied = resources.migrate()
        finally:
            resources.close()
    print(json.dumps(applied))
    return 0


def cmd_worker(args) -> int:
    from workers.main import run_worker

    settings = attached_services()
    # RQ's worker installs its own SIGTERM/SIGINT handlers (an immediate, clean stop).
    return run_worker(settings, queues=args.queues or None, burst=args.burst, comfyui=args.comfyui or None,
                      models=args.models or None, metrics_port=args.metrics_port)


def cmd_scheduler(args) -> int:
    from workers.scheduler import run_scheduler

    _stop_on_sigterm()
    return run_scheduler(attached_services(required=("AIMG_REDIS_URL",)))


def cmd_fake_comfyui(args) -> int:
    from .devservices.fake_comfyui import FakeComfyUI

    if args.port and _port_busy(args.host, args.port):
        return _say_port_busy(args.host, args.port)
    _stop_on_sigterm()
    FakeComfyUI(args.host, args.port, render_seconds=args.render_seconds).serve_forever()
    return 0


def cmd_openapi(args) -> int:
    from . import create_app

    settings = load_settings(migrate_on_start=False, mongodb_uri="", redis_url="")
    app = create_app(settings)
    print(json.dumps(app.extensions["aimg_api"].spec.to_dict(), indent=2 if args.indent else None))
    return 0


def cmd_plugins(args) -> int:
    from .plugin_api.manager import build_plugin_manager, describe_plugins

    settings = load_settings()
    rows = describe_plugins(build_plugin_manager(settings.disabled_plugins))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        if row["blocked"]:
            print(f"{row['name']}  (blocked)")
            continue
        print(row["name"])
        for hook, provided in row["hooks"].items():
            print(f"  {hook}: {', '.join(provided) if provided else '-'}")
    return 0


def cmd_comfyui_servers(args) -> int:
    import asyncio

    import redis

    from workers.comfy import ComfyPool

    # The health cache lives in Redis: the embedded one when a launcher runs for this data dir.
    settings = attached_services(required=("AIMG_REDIS_URL",))
    urls = [u.rstrip("/") for u in (args.comfyui or settings.comfyui_urls)]
    if not urls:
        print("no ComfyUI server configured (AIMG_COMFYUI_URLS or --comfyui)", file=sys.stderr)
        return 2
    connection = redis.Redis.from_url(settings.redis_url)
    pool = ComfyPool(urls, connection, health_ttl_s=settings.comfyui_health_ttl_s,
                     http_timeout_s=settings.comfyui_http_timeout_s)
    rows = asyncio.run(pool.survey())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        caps = row["capabilities"] or {}
        print(f"{row['url']}  {row['health']}  runs in flight: {row['load']}  "
              f"node classes: {len(caps.get('nodes') or []) if caps else '?'}")
        for key, files in sorted((caps.get("models") or {}).items()):
            if not key.endswith(".sampler_name"):
                print(f"  {key}: {', '.join(files) if files else '-'}")
    return 0




README_START = "<!-- settings table: generated by `aimg settings --write-readme` -->"
README_END = "<!-- end of settings table -->"


def readme_with_table(text: str) -> str:
    from .config import settings_table

    before, _, rest = text.partition(README_START)
    _, _, after = rest.partition(README_END)
    return f"{before}{README_START}\n{settings_table()}{README_END}{after}"


def cmd_settings(args) -> int:
    from pathlib import Path

    from .config import settings_table

    if args.write_readme:
        readme = Path(__file__).resolve().parents[1] / "README.md"
        readme.write_text(readme_with_table(readme.read_text()))
        return 0
    print(settings_table(), end="")
    return 0


def _smtp_noop(url: str) -> None:
    import smtplib
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with smtp_class(parts.hostname, parts.port or 25, timeout=2) as smtp:
        smtp.noop()


def cmd_doctor(args) -> int:
    """Check the configuration, then reach every configured service: one line each."""
    import time

    from .api.health import readiness
    from .resources import Resources

    try:
        settings = attached_services(required=())
    except ValueError as exc:
        print(f"configuration  invalid: {exc}")
        return 2
    print("configuration  ok")
    resources = Resources(settings)
    try:
        _, checks = readiness(resources)
        started = time.perf_counter()
        if settings.smtp_url:
            try:
                _smtp_noop(settings.smtp_url)
                checks.append({"name": "smtp", "status": "ok", "latencyMs": round((time.perf_counter() - started) * 1000, 1)})
            except Exception as exc:  # noqa: BLE001
                checks.append({"name": "smtp", "status": "down", "error": f"{type(exc).__name__}: {exc}"})
        else:
            checks.append({"name": "smtp", "status": "not configured"})
    finally:
        resources.close()
    for check in checks:
        for entry in check.get("servers", [check]):
            detail = f"{entry['latencyMs']:.0f} ms" if entry["status"] == "ok" else entry.get("error", "")
            print(f"{entry['name']:<14} {entry['status']:<15} {detail}".rstrip())
    return 1 if any(c["status"] == "down" for c in checks) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aimg", description="AIMG back-end")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the embedded services (those not configured) and the API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-worker", dest="worker", action="store_false",
                       help="do not start a generation worker beside the API")
    serve.add_argument("--no-fake-comfyui", dest="fake_comfyui", action="store_false",
                       help="do not start a fake ComfyUI when AIMG_COMFYUI_URLS is empty")
    serve.set_defaults(func=cmd_serve, exit_now=True)
    sub.add_parser("services", help="run only the embedded services").set_defaults(func=cmd_services, exit_now=True)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    worker = sub.add_parser("worker", help="run an RQ worker on the configured queues")
    worker.add_argument("--queue", dest="queues", action="append", help="queue to listen on (repeatable)")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.add_argument("--comfyui", action="append", metavar="URL",
                        help="a ComfyUI server of this worker's pool (repeatable; default AIMG_COMFYUI_URLS)")
    worker.add_argument("--models", action="append", metavar="ID",
                        help="only the queues of this model or workflow template (repeatable)")
    worker.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve this worker's Prometheus metrics on PORT (/metrics)")
    worker.set_defaults(func=cmd_worker, exit_now=True)
    sub.add_parser("scheduler", help="enqueue the periodic jobs at their intervals (one leader among any number)"
                   ).set_defaults(func=cmd_scheduler, exit_now=True)
    fake = sub.add_parser("fake-comfyui", help="run a fake ComfyUI server (ComfyUI's protocol, Pillow renders)")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8188)
    fake.add_argument("--render-seconds", type=float, default=0.05, help="time one sampler run takes")
    fake.set_defaults(func=cmd_fake_comfyui)
    settings = sub.add_parser("settings", help="print the table of every setting (variable, TOML key, default)")
    settings.add_argument("--write-readme", action="store_true", help="replace the table in README.md")
    settings.set_defaults(func=cmd_settings)
    sub.add_parser("doctor", help="check the configuration and reach every configured service"
                   ).set_defaults(func=cmd_doctor)
    openapi = sub.add_parser("openapi", help="print the OpenAPI document as JSON")
    openapi.add_argument("--indent", action="store_true")
    openapi.set_defaults(func=cmd_openapi)
    plugins = sub.add_parser("plugins", help="list loaded plugins and what each provides")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=cmd_plugins)
    servers = sub.add_parser("comfyui-servers", help="ask each ComfyUI server now: health, node classes, model files")
    servers.add_argument("--comfyui", action="append", metavar="URL", help="instead of AIMG_COMFYUI_URLS (repeatable)")
    servers.add_argument("--json", action="store_true")
    servers.set_defaults(func=cmd_comfyui_servers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args) or 0
    except (ValueError, ServiceFailed) as exc:  # configuration errors: say what is wrong, no traceback
        _say(f"aimg: {exc}")
        return 2
    if getattr(args, "exit_now", False):
        # Long-running commands have closed everything by now; the interpreter's own exit
        # handlers would add seconds (pymongo joins each monitor thread, executors join theirs).
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
