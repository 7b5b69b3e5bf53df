"""GET /events in a real browser: a generation's events arrive in order, and a dropped stream
resumes (EventSource's own Last-Event-ID) without loss or duplicates."""
from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from aimg_app.config import Domain
from aimg_app.devservices.fake_comfyui import FakeComfyUI
from tests.conftest import STRONG_PASSWORD
from tests.generation_support import clear_generation_queues
from tests.support.live import free_port, serve_app, serve_page

PAGE = """<!doctype html><html><body><script>
window.got = [];
window.listen = (url) => {
  const source = new EventSource(url);
  window.source = source;
  window.opens = 0;
  source.onopen = () => { window.opens += 1; };
  for (const kind of ["queued", "started", "progress", "completed", "failed", "cancelled"]) {
    source.addEventListener(kind, (e) => window.got.push({id: e.lastEventId, type: e.type, data: JSON.parse(e.data)}));
  }
};
</script></body></html>"""


@pytest.fixture(scope="module")
def comfy():
    with FakeComfyUI(render_seconds=0.4) as fake:
        yield fake


@pytest.fixture(scope="module")
def front_end():
    return free_port()


@pytest.fixture(scope="module")
def app(make_app, comfy, front_end):
    domain = Domain(identifier="localhost", display_name="AIMG", environment="dev",
                    origins=(f"http://127.0.0.1:{front_end}",), hosts=("127.0.0.1", "localhost"))
    app = make_app(domains=(domain,), comfyui_urls=(comfy.url,))
    clear_generation_queues(app)
    return app


@pytest.fixture(scope="module")
def live(app):
    with serve_app(app) as url:
        yield url


def _sign_up(api: str) -> dict:
    sid = str(uuid.uuid4())
    body = requests.post(f"{api}/createUser", json={"email": f"ev-{sid[:8]}@example.com", "password": STRONG_PASSWORD},
                         headers={"X-Session-ID": sid}, timeout=10).json()
    return {"sid": sid, "user_id": body["payload"]["userID"]}


def _work(app) -> None:
    """Playwright's loop owns this thread; the worker runs its own in another (where signal
    handlers cannot be installed)."""
    import threading

    from rq import Queue, SimpleWorker

    from tests.generation_support import generation_queue_names
    from workers import jobs

    from rq.timeouts import TimerDeathPenalty

    class ThreadWorker(SimpleWorker):
        death_penalty_class = TimerDeathPenalty

        def _install_signal_handlers(self):
            pass

    resources = app.extensions["aimg"]
    jobs.set_resources(resources)
    queues = [Queue(n, connection=resources.redis) for n in generation_queue_names(app)]
    thread = threading.Thread(target=lambda: ThreadWorker(queues, connection=resources.redis).work(
        burst=True, with_scheduler=False, logging_level="WARNING"))
    thread.start()
    thread.join(60)


def _wait(page, expression: str, seconds: float = 20) -> None:
    page.wait_for_function(expression, timeout=seconds * 1000)


def _stored(app, user_id: str) -> list[tuple[str, str, str]]:
    """What the server kept for the user: (id, type, imageID) in order (stored as GenerationStatus fields)."""
    entries = app.extensions["aimg"].redis.xrange(f"aimg:events:{user_id}")
    return [(i.decode(), f[b"event"].decode(), json.loads(f[b"data"])["image_id"]) for i, f in entries]


def test_a_generation_pushes_its_events_in_order(app, live, page, front_end):
    user = _sign_up(live)
    with serve_page(PAGE, port=front_end) as origin:
        page.goto(origin + "/")
        page.evaluate("url => window.listen(url)", f"{live}/events?sessionID={user['sid']}")
        _wait(page, "window.opens >= 1")
        queued = requests.post(f"{live}/generateImage", json={"prompt": "a red fox"},
                               headers={"X-Session-ID": user["sid"]}, timeout=10).json()["payload"]
        _work(app)
        _wait(page, "window.got.some(e => e.type === 'completed')")
        got = page.evaluate("window.got")
    kinds = [e["type"] for e in got]
    assert kinds[0] == "queued" and got[0]["data"]["queuePosition"] >= 1
    assert kinds[1] == "started" and kinds[-1] == "completed"
    assert set(kinds[2:-1]) <= {"progress"} and len(kinds) >= 3
    assert all(e["data"]["imageID"] == queued["imageID"] for e in got)
    assert got[-1]["data"]["url"].startswith("/getFile?id=")
    assert [e["id"] for e in got] == [s[0] for s in _stored(app, user["user_id"])]


def test_a_dropped_stream_resumes_without_loss_or_duplicates(app, live, page, front_end, monkeypatch):
    # the server drops every stream quickly
    monkeypatch.setattr(app.extensions["aimg"].settings, "events_stream_seconds", 0.7)
    user = _sign_up(live)
    with serve_page(PAGE, port=front_end) as origin:
        page.goto(origin + "/")
        page.evaluate("url => window.listen(url)", f"{live}/events?sessionID={user['sid']}")
        _wait(page, "window.opens >= 1")
        ids = []
        for prompt in ("one", "two"):  # one at a time: a free user's concurrency limit
            ids.append(requests.post(f"{live}/generateImage", json={"prompt": prompt},
                                     headers={"X-Session-ID": user["sid"]}, timeout=10).json()["payload"]["imageID"])
            _work(app)
        _wait(page, f"window.got.filter(e => e.type === 'completed').length === 2")
        time.sleep(1.5)  # another reconnect or two: nothing is sent twice
        got = page.evaluate("window.got")
        opens = page.evaluate("window.opens")
        page.evaluate("window.source.close()")
    assert opens >= 2, "the stream was never dropped and reopened"
    stored = _stored(app, user["user_id"])
    assert [(e["id"], e["type"], e["data"]["imageID"]) for e in got] == stored
    assert len({e["id"] for e in got}) == len(got)
    assert {image for _, kind, image in stored if kind == "completed"} == set(ids)


def test_reopening_with_last_event_id_gets_only_what_was_missed(app, live):
    user = _sign_up(live)
    requests.post(f"{live}/generateImage", json={"prompt": "three"}, headers={"X-Session-ID": user["sid"]}, timeout=10)
    _work(app)
    stored = _stored(app, user["user_id"])
    assert len(stored) >= 3
    with requests.get(f"{live}/events", headers={"X-Session-ID": user["sid"], "Last-Event-ID": stored[0][0]},
                      stream=True, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        seen = []
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("id: "):
                seen.append(line[4:])
            if len(seen) == len(stored) - 1:
                break
    assert seen == [s[0] for s in stored[1:]]


def test_events_need_a_session(live):
    response = requests.get(f"{live}/events", timeout=10)
    assert response.status_code == 400 and "X-Session-ID" in response.json()["errorMessage"]
    bad = requests.get(f"{live}/events", headers={"X-Session-ID": str(uuid.uuid4()), "Last-Event-ID": "nope"},
                       timeout=10)
    assert bad.status_code == 400


def _open(api: str, sid: str, address: str):
    return requests.get(f"{api}/events", headers={"X-Session-ID": sid, "X-Forwarded-For": address}, stream=True,
                        timeout=10)


def _frees_within(api: str, sid: str, address: str, seconds: float = 8) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = _open(api, sid, address)
        if response.status_code == 200:
            response.close()
            return True
        assert response.status_code == 429
        response.close()
        time.sleep(0.2)
    return False


def test_open_streams_are_capped_per_user_and_per_address_and_freed_when_closed(make_app, monkeypatch):
    """The attack: open streams without end until the server runs out of threads and Redis connections."""
    import random
    import socket

    from aimg_app.services import events as events_service

    monkeypatch.setattr(events_service, "BLOCK_MS", 200)  # a vanished client is noticed at the next keep-alive
    app = make_app(events_streams_per_user=2, events_streams_per_client=3, trusted_proxy_count=1)
    address, elsewhere = (f"10.{random.randrange(256)}.{random.randrange(256)}.{n}" for n in (1, 2))
    with serve_app(app) as api:
        a, b = _sign_up(api), _sign_up(api)
        first, second = _open(api, a["sid"], address), _open(api, a["sid"], address)
        assert (first.status_code, second.status_code) == (200, 200)
        over = _open(api, a["sid"], address)
        assert over.status_code == 429 and "user" in over.json()["errorMessage"]
        assert _open(api, a["sid"], elsewhere).status_code == 429  # the user's cap, whatever the address
        third = _open(api, b["sid"], address)
        assert third.status_code == 200
        full = _open(api, b["sid"], address)
        assert full.status_code == 429 and "address" in full.json()["errorMessage"]
        anonymous = _open(api, str(uuid.uuid4()), address)  # a fresh session id is free to mint: still capped
        assert anonymous.status_code == 429
        elsewhere_stream = _open(api, b["sid"], elsewhere)
        assert elsewhere_stream.status_code == 200

        # a stream the client closes gives its slot back
        first.close()
        assert _frees_within(api, a["sid"], address)

        # and so does one whose client vanished without a word (the socket reset)
        second.close()
        third.close()
        elsewhere_stream.close()
        host, port = api.rsplit("/", 1)[1].split(":")
        assert _frees_within(api, b["sid"], address) and _frees_within(api, b["sid"], elsewhere)
        raw = []
        for _ in range(2):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(f"GET /events HTTP/1.1\r\nHost: {host}\r\nX-Session-ID: {a['sid']}\r\n"
                         f"X-Forwarded-For: {address}\r\n\r\n".encode())
            assert b" 200 " in sock.recv(4096).split(b"\r\n", 1)[0]
            raw.append(sock)
        assert _open(api, a["sid"], address).status_code == 429
        for sock in raw:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
        assert _frees_within(api, a["sid"], address)


@pytest.mark.parametrize("how", ["password change", "sign-out"])
def test_a_stream_ends_when_its_session_no_longer_signs_its_owner_in(live, how):
    """The attack: keep a stream open on a session, then the owner changes the password (or the
    session is signed out): the owner's later events must not reach that stream."""
    import threading

    user = _sign_up(live)
    email = f"ev-{user['sid'][:8]}@example.com"
    other = {"X-Session-ID": str(uuid.uuid4())}
    signed = requests.post(f"{live}/authenticateUser", json={"email": email, "password": STRONG_PASSWORD},
                           headers=other, timeout=10)
    assert signed.status_code == 200, signed.text
    lines, ended = [], threading.Event()

    def read():
        with requests.get(f"{live}/events", headers={"X-Session-ID": user["sid"]}, stream=True, timeout=30) as r:
            assert r.status_code == 200
            for line in r.iter_lines(decode_unicode=True):
                lines.append(line)
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.5)  # the stream is open
    before = requests.post(f"{live}/generateImage", json={"prompt": "before"}, headers=other, timeout=10)
    assert before.status_code == 200, before.text
    before_id = before.json()["payload"]["imageID"]

    def seen(text: str) -> None:  # the event woke the stream, which checked its owner just then
        deadline = time.monotonic() + 10
        while not [line for line in lines if before_id in line and text in line] and time.monotonic() < deadline:
            time.sleep(0.02)

    seen('"queued"')
    cancelled = requests.post(f"{live}/cancelGeneration", json={"imageID": before_id}, headers=other, timeout=10)
    assert cancelled.status_code == 200, cancelled.text  # (the user may run one at a time)
    seen('"cancelled"')
    if how == "password change":
        answer = requests.post(f"{live}/setSelfUserProperties", json={"password": STRONG_PASSWORD + "2"},
                               headers=other, timeout=10)
    else:
        answer = requests.post(f"{live}/signOutUser", headers={"X-Session-ID": user["sid"]}, timeout=10)
    assert answer.status_code == 200, answer.text
    queued = requests.post(f"{live}/generateImage", json={"prompt": "after"}, headers=other, timeout=10)
    assert queued.status_code == 200, queued.text
    assert ended.wait(15), "the stream outlived the sign-in it was opened under"
    image_id = queued.json()["payload"]["imageID"]
    assert not [line for line in lines if image_id in line]
