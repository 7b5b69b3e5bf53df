"""The request path's cost: database commands per call, and requests per second against a
bare Flask app in the same run.

Commands: every read endpoint of the contract that a plain deployment serves, and the main
writes, called once through the application in this process (Flask's test client) on a
small library; MongoDB commands by pymongo's command monitoring, PostgreSQL statements by
wrapping psycopg's cursor (``tests/support/commands.py``). A count does not depend on the
machine. Reads are counted on their second call (the steady state; the first may create the
session's document), writes on fresh data.

Throughput: the API under gunicorn (``deploy/gunicorn.conf.py``, 2 processes) and a bare
one-route Flask app returning a small JSON under the same gunicorn settings, each endpoint
hit by wrk (16 connections, 5 s) in the same run, each run followed by one of the bare app;
the ratio is taken to that neighbour. The machine may be shared and noisy: compare the ratios,
not the absolute figures, and on the embedded MongoDB-protocol server (mongoeco on SQLite)
absolute figures are not MongoDB's.

    .venv/bin/python -m benchmarks.request_path [--seconds 5] [--connections 16] [--skip-wrk]

wrk is Debian's package: ``apt-get install -y wrk``.
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "bench-admin-key-0123456789abcdef"
PASSWORD = "Bench-pass-w0rd!"
# targets from the request-path issue: authenticated reads and getModels against the bare app
TARGETS = {"getSelfUser": 0.10, "getItem": 0.10, "getMyCreations": 0.10, "getSelfFolders": 0.10, "getModels": 0.6}
PNG_1PX = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def bare_app():
    """The yardstick: one route, a small JSON, nothing else (``gunicorn '...:bare_app()'``)."""
    from flask import Flask, jsonify

    app = Flask("bare")

    @app.get("/ping")
    def ping():
        return jsonify({"hasError": False, "payload": {"ok": True}})

    return app


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the library the calls run on -------------------------------------------------------------


def _ok(response) -> dict:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:300])
    return response.get_json()["payload"]


def _make_items(app, user_id: str, n: int) -> list[str]:
    from aimg_app.services import items as items_service

    domain = app.extensions["aimg"].settings.default_domain.identifier
    with app.app_context():
        made = items_service.create_queued_items(user_id=user_id, domain=domain, count=n, mtype="image",
                                                 params={"prompt": "a lighthouse", "model_id": "m1", "steps": 20})
        for item in made:
            items_service.complete_item(item.id, url=f"https://files.example/{item.id}.png", file_id=None,
                                        width=512, height=512, seed=7)
    return [item.id for item in made]


def _sign_up(client) -> dict:
    headers = {"X-Session-ID": str(uuid.uuid4())}
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    body = _ok(client.post("/createUser", json={"email": email, "password": PASSWORD}, headers=headers))
    return {"headers": headers, "user_id": body["userID"], "email": email}


def build_library(app) -> dict:
    """A user with 30 Items (one liked, some in a folder, one public), 3 folders, a KVP; a
    second user's public Item; a tag."""
    client = app.test_client()
    owner, other = _sign_up(client), _sign_up(client)
    admin = {**owner["headers"], "X-Administration-Key": ADMIN_KEY}
    items = _make_items(app, owner["user_id"], 30)
    folders = [_ok(client.post("/createSelfFolder", json={"name": f"f{n}"}, headers=owner["headers"]))["id"]
               for n in range(3)]
    _ok(client.post("/addImagesToSelfFolder", json={"folderID": folders[0], "imageIDs": items[:5]},
                    headers=owner["headers"]))
    _ok(client.post("/likeItems", json={"imageIDs": [items[0]]}, headers=owner["headers"]))
    _ok(client.post("/setUserKVP", json={"key": "theme", "value": "dark"}, headers=owner["headers"]))
    _ok(client.post("/addTagsToItem", json={"imageID": items[1], "tags": ["lighthouse"]}, headers=owner["headers"]))
    [public] = _make_items(app, other["user_id"], 1)
    for who, item in ((other, public), (owner, items[2])):
        _ok(client.post("/setItemProperties", json={"imageID": item, "publicApprovalStatus": "pending"},
                        headers=who["headers"]))
        _ok(client.post("/setPublicApprovalStatus", json={"imageIDs": [item], "publicApprovalStatus": "approved"},
                        headers={**who["headers"], "X-Administration-Key": ADMIN_KEY}))
    batch = _ok(client.get("/getItem", query_string={"imageID": items[0]}, headers=owner["headers"]))["batchID"]
    models = _ok(client.get("/getModels"))
    return {"owner": owner, "other": other, "admin": admin, "items": items, "folders": folders, "public": public,
            "batch": batch, "model": models[0]["modelID"] if models else None,
            "anonymous": {"X-Session-ID": str(uuid.uuid4())}}


def reads(lib: dict) -> list[tuple[str, str, dict, dict]]:
    """(name, path with query, headers) of each read."""
    owner, anon, admin = lib["owner"]["headers"], lib["anonymous"], lib["admin"]
    item = lib["items"][0]
    return [
        ("getSelfUser", "/getSelfUser", owner),
        ("getSelfUser (anonymous)", "/getSelfUser", anon),
        ("getUserKVP", "/getUserKVP?key=theme", owner),
        ("getUser", f"/getUser?userID={lib['other']['user_id']}", owner),
        ("getBillingPlans", "/getBillingPlans", anon),
        ("getItem", f"/getItem?imageID={item}", owner),
        ("getItem (another's public)", f"/getItem?imageID={lib['public']}", owner),
        ("getItemDetails", f"/getItemDetails?imageID={item}", owner),
        ("getLastCompletedItem", "/getLastCompletedItem", owner),
        ("getMyCreations", "/getMyCreations?limit=20", owner),
        ("getMyCreations (folder)", f"/getMyCreations?folderID={lib['folders'][0]}", owner),
        ("getPublicCreations", "/getPublicCreations", owner),
        ("getBatchItems", f"/getBatchItems?batchID={lib['batch']}", owner),
        ("getSampleItems", "/getSampleItems", anon),
        ("getLatestItems", "/getLatestItems", anon),
        ("getModels", "/getModels", {}),
        ("getQueuesLength", "/getQueuesLength", {}),
        ("getSamplePrompts", "/getSamplePrompts", {}),
        ("getSelfFolders", "/getSelfFolders", owner),
        ("getPublicFolders", "/getPublicFolders", anon),
        ("getTagsList", "/getTagsList", anon),
        ("getAffiliateAd", "/getAffiliateAd", anon),
        ("getItems (admin)", "/getItems", admin),
        ("getReports (admin)", "/getReports", admin),
    ]


def writes(lib: dict) -> list[tuple[str, str, str, dict, dict]]:
    """(name, method, path, headers, request keywords) of the main writes, each on fresh data."""
    owner = lib["owner"]["headers"]
    items = lib["items"]
    fresh = {"X-Session-ID": str(uuid.uuid4())}
    signed_in = {"X-Session-ID": str(uuid.uuid4())}
    return [
        ("createUser", "POST", "/createUser", fresh,
         {"json": {"email": f"w-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}}),
        ("authenticateUser", "POST", "/authenticateUser", signed_in,
         {"json": {"email": lib["owner"]["email"], "password": PASSWORD}}),
        ("signOutUser", "POST", "/signOutUser", signed_in, {}),
        ("setSelfUserProperties (username)", "POST", "/setSelfUserProperties", owner,
         {"json": {"username": f"bench{uuid.uuid4().hex[:8]}"}}),
        ("setUserKVP", "POST", "/setUserKVP", owner, {"json": {"key": "k2", "value": "v"}}),
        ("likeItems", "POST", "/likeItems", owner, {"json": {"imageIDs": [items[3]]}}),
        ("setItemProperties", "POST", "/setItemProperties", owner,
         {"json": {"imageID": items[4], "publicApprovalStatus": "pending"}}),
        ("addTagsToItem", "POST", "/addTagsToItem", owner, {"json": {"imageID": items[5], "tags": ["sea"]}}),
        ("createSelfFolder", "POST", "/createSelfFolder", owner, {"json": {"name": "new"}}),
        ("addImagesToSelfFolder", "POST", "/addImagesToSelfFolder", owner,
         {"json": {"folderID": lib["folders"][1], "imageIDs": items[6:8]}}),
        ("deleteItems", "DELETE", "/deleteItems", owner, {"query_string": {"imageIDs": items[9]}}),
        ("restoreItems (admin)", "POST", "/restoreItems", lib["admin"], {"json": {"imageIDs": [items[9]]}}),
        ("generateImage", "POST", "/generateImage", owner,
         {"json": {"prompt": "a lighthouse", "modelName": lib["model"]}}),
        ("ingestLogs", "POST", "/ingestLogs", owner, {"json": {"logs": [{"message": "bench"}]}}),
        ("pgQuery (admin)", "POST", "/pgQuery", lib["admin"], {"json": {"queryText": "SELECT count(*) FROM log_entries"}}),
        ("uploadFile (admin)", "POST", "/uploadFile", lib["admin"],
         {"data": {"file": (__import__("io").BytesIO(PNG_1PX), "p.png")}}),
    ]


def count_commands(app, lib: dict) -> list[tuple[str, int, int, int, str]]:
    """(name, status, MongoDB commands, PostgreSQL statements, the commands) per call."""
    from tests.support import commands

    client = app.test_client()
    rows = []

    def measure(name, call):
        with commands.counting(postgres=True) as sent:
            response = call()
        detail = ", ".join(f"{c}:{coll}" for c, coll in sent.mongo)
        if sent.postgres:
            detail += " | pg: " + "; ".join(sent.postgres)
        rows.append((name, response.status_code, len(sent.mongo), len(sent.postgres), detail))

    for name, path, headers in reads(lib):
        client.get(path, headers=headers)  # the first call may create the session
        measure(name, lambda: client.get(path, headers=headers))
    for name, method, path, headers, kwargs in writes(lib):
        measure(name, lambda: client.open(path, method=method, headers=headers, **kwargs))
    return rows


# --- throughput --------------------------------------------------------------------------------


def _wrk(url: str, headers: dict, seconds: int, connections: int) -> tuple[float, int]:
    """(requests per second, non-2xx answers) of one wrk run."""
    args = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 30).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, int(bad.group(1)) if bad else 0


def _gunicorn(env: dict, app_spec: str, port: int, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", app_spec],
                                cwd=ROOT, env={**env, "AIMG_BIND": f"127.0.0.1:{port}"}, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/ping" if "bare" in app_spec else f"http://127.0.0.1:{port}/healthz",
                      timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"gunicorn {app_spec} did not start (see {log})")


def throughput(env: dict, lib: dict, names: list[str], seconds: int, connections: int, log_dir: Path) -> list[tuple]:
    """Each endpoint's wrk run followed by one of the bare app: a ratio is taken to the bare run
    next to it, so a burst of load elsewhere on the machine touches both sides alike."""
    api_port, bare_port = _free_port(), _free_port()
    api = _gunicorn(env, "wsgi:app", api_port, log_dir / "api.log")
    # its own metrics directory: gunicorn's start empties the one it is given
    bare = _gunicorn({**env, "PROMETHEUS_MULTIPROC_DIR": str(log_dir / "bare-metrics")},
                     "benchmarks.request_path:bare_app()", bare_port, log_dir / "bare.log")
    rows = []
    try:
        by_name = {name: (path, headers) for name, path, headers in reads(lib)}
        _wrk(f"http://127.0.0.1:{bare_port}/ping", {}, 1, connections)  # warm both up
        _wrk(f"http://127.0.0.1:{api_port}/getModels", {}, 1, connections)
        for name in names:
            path, headers = by_name[name]
            rate, bad = _wrk(f"http://127.0.0.1:{api_port}{path}", headers, seconds, connections)
            bare_rate, _ = _wrk(f"http://127.0.0.1:{bare_port}/ping", {}, seconds, connections)
            rows.append((name, rate, bad, bare_rate, rate / bare_rate, TARGETS.get(name)))
    finally:
        for proc in (api, bare):
            proc.terminate()
        for proc in (api, bare):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="each wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--skip-wrk", action="store_true", help="the command counts only")
    parser.add_argument("--log-level", default="WARNING", help="AIMG_LOG_LEVEL of both servers (default WARNING)")
    args = parser.parse_args(argv)
    if not args.skip_wrk and shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk (or --skip-wrk for the command counts)", file=sys.stderr)
        return 2

    from tests.support import commands

    commands.install()  # before any MongoDB client exists
    from aimg_app import create_app
    from aimg_app.config import load_settings
    from aimg_app.devservices import EmbeddedServices

    data_dir = Path(tempfile.mkdtemp(prefix="aimg-reqpath-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    launcher = EmbeddedServices(data_dir, env=base_env, say=lambda _m: None)
    exports = launcher.start()
    env = {**base_env, **exports, "PYTHONPATH": str(ROOT), "AIMG_DATA_DIR": str(data_dir),
           "AIMG_ADMIN_KEYS": f"bench:{ADMIN_KEY}", "AIMG_MIGRATE_ON_START": "false",
           "AIMG_LOG_LEVEL": args.log_level, "AIMG_API_PROCESSES": "2",
           "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "metrics")}
    try:
        app = create_app(load_settings({**env, "AIMG_MIGRATE_ON_START": "true"}))
        app.testing = True
        lib = build_library(app)
        print(f"{'call':36} {'status':>6} {'MongoDB':>8} {'PostgreSQL':>10}  commands")
        for name, status, mongo, pg, detail in count_commands(app, lib):
            print(f"{name:36} {status:>6} {mongo:>8} {pg:>10}  {detail}")
        if args.skip_wrk:
            return 0
        app.extensions["aimg"].close()
        names = ["getModels", "getSelfUser", "getItem", "getMyCreations", "getSelfFolders", "getPublicCreations",
                 "getSelfUser (anonymous)"]
        log_dir = data_dir / "logs"
        log_dir.mkdir(exist_ok=True)
        print(f"\nwrk: {args.connections} connections, {args.seconds} s each; gunicorn 2 processes (deploy/gunicorn.conf.py)")
        print(f"{'endpoint':28} {'req/s':>8} {'non-2xx':>8} {'bare':>8} {'× bare':>7} {'target':>7}")
        for name, rate, bad, bare_rate, ratio, target in throughput(env, lib, names, args.seconds, args.connections,
                                                                    log_dir):
            mark = "" if target is None else ("ok" if ratio >= target else "BELOW")
            target_text = f"≥{target:.2f}" if target is not None else ""
            print(f"{name:28} {rate:>8.0f} {bad:>8} {bare_rate:>8.0f} {ratio:>7.3f} {target_text:>7} {mark}")
        return 0
    finally:
        launcher.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
