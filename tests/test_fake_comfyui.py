"""The fake ComfyUI speaks ComfyUI's protocol (as observed on real 0.3.64 and 0.8.0 servers), through
the same comfy-api-client calls the workers use."""
from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import time

import httpx
import pytest
import websockets
from comfy_api_client import ComfyAPIClient
from PIL import Image

from aimg_app.devservices.fake_comfyui import FakeComfyUI

GRAPH = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 2, "color": 255}},
         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t/x"}}}


@pytest.fixture(scope="module")
def fake():
    with FakeComfyUI(render_seconds=0.02) as server:
        yield server


def _run(coro):
    return asyncio.run(coro)


def test_a_run_sends_comfyuis_messages_in_order_and_serves_pngs(fake):
    async def go():
        async with httpx.AsyncClient() as http:
            client = ComfyAPIClient(fake.url, http)
            stats = await client.get_system_stats()
            assert stats.devices and stats.system.os
            async with websockets.connect(f"ws://127.0.0.1:{fake.port}/ws?clientId={client.client_id}") as ws:
                first = json.loads(await ws.recv())
                assert first == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}},
                                                            "sid": client.client_id}}
                prompt = await client.submit_workflow(GRAPH, return_future=False)
                assert prompt.node_errors == {} and prompt.number >= 0
                kinds = []
                while True:
                    message = json.loads(await ws.recv())
                    kinds.append(message["type"])
                    if message["type"] == "executing" and message["data"]["node"] is None:
                        break
            result = await client.fetch_results(prompt.prompt_id)
            history = await client.get_history(prompt.prompt_id)
            return kinds, result, history[prompt.prompt_id]

    kinds, result, entry = _run(go())
    assert kinds.index("execution_start") < kinds.index("executed") < kinds.index("execution_success")
    assert kinds[-1] == "executing" and "execution_cached" in kinds
    assert [img.image.size for img in result.output_images] == [(64, 48), (64, 48)]
    assert result.output_images[0].format == "png"
    assert entry["status"] == {"status_str": "success", "completed": True, "messages": entry["status"]["messages"]}
    assert entry["prompt"][4] == ["2"] and entry["outputs"]["2"]["images"][0]["subfolder"] == "t"


@pytest.mark.parametrize("graph, error_type, node_error", [
    ({"1": {"class_type": "NoSuchNode", "inputs": {}}}, "invalid_prompt", None),
    ({"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}},
     "prompt_no_outputs", None),
    ({**GRAPH, "1": {"class_type": "EmptyImage", "inputs": {"width": -5, "height": 8, "batch_size": 1, "color": 0}}},
     "prompt_outputs_failed_validation", "value_smaller_than_min"),
    ({**GRAPH, "1": {"class_type": "EmptyImage", "inputs": {"height": 8, "batch_size": 1, "color": 0}}},
     "prompt_outputs_failed_validation", "required_input_missing"),
    ({**GRAPH, "1": {"class_type": "EmptyImage", "inputs": {"width": "wide", "height": 8, "batch_size": 1, "color": 0}}},
     "prompt_outputs_failed_validation", "invalid_input_type"),
    ({"2": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "x"}}},
     "prompt_outputs_failed_validation", "exception_during_validation"),
])
def test_rejections_use_comfyuis_error_format(fake, graph, error_type, node_error):
    resp = httpx.post(f"{fake.url}/prompt", json={"prompt": graph, "client_id": "c"})
    assert resp.status_code == 400
    body = resp.json()
    assert set(body["error"]) == {"type", "message", "details", "extra_info"}
    assert body["error"]["type"] == error_type
    if node_error:
        (node,) = body["node_errors"].values()
        assert node["errors"][0]["type"] == node_error and node["dependent_outputs"] == ["2"]
    if error_type == "invalid_prompt":
        assert body["error"]["message"] == "Cannot execute because node NoSuchNode does not exist."
        assert body["error"]["details"] == "Node ID '#1'"


def test_other_endpoints(fake):
    assert httpx.post(f"{fake.url}/prompt", json={}).json()["error"]["type"] == "no_prompt"
    not_json = httpx.post(f"{fake.url}/prompt", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 500 and "json" not in not_json.headers.get("content-type", "")
    assert httpx.get(f"{fake.url}/history/unknown").json() == {}
    assert httpx.get(f"{fake.url}/view?filename=missing.png&type=output").status_code == 404
    assert httpx.get(f"{fake.url}/queue").json() == {"queue_running": [], "queue_pending": []}
    idle = httpx.post(f"{fake.url}/interrupt")
    assert idle.status_code == 200 and idle.content == b""
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, format="PNG")
    uploaded = httpx.post(f"{fake.url}/upload/image", files={"image": ("in.png", buf.getvalue(), "image/png")}).json()
    assert uploaded == {"name": "in.png", "subfolder": "", "type": "input"}
    # ComfyUI stores any upload; only LoadImage fails on it (test_an_unreadable_upload_fails_in_load_image).
    assert httpx.post(f"{fake.url}/upload/image", files={"image": ("x.png", b"not png", "image/png")}).json() == {
        "name": "x.png", "subfolder": "", "type": "input"}
    assert httpx.get(f"{fake.url}/prompt").json() == {"exec_info": {"queue_remaining": 0}}
    one = httpx.get(f"{fake.url}/object_info/EmptyImage").json()
    assert list(one) == ["EmptyImage"] and one["EmptyImage"]["output"] == ["IMAGE"]
    unknown = httpx.get(f"{fake.url}/object_info/NoSuchNode")
    assert unknown.status_code == 200 and unknown.json() == {}


def test_injected_execution_error_and_interrupt(fake):
    fake.inject("execution_error", message="boom")

    async def go(graph):
        async with websockets.connect(f"ws://127.0.0.1:{fake.port}/ws?clientId=cid") as ws:
            resp = httpx.post(f"{fake.url}/prompt", json={"prompt": graph, "client_id": "cid"}).json()
            while True:
                message = json.loads(await ws.recv())
                if message["type"] in ("execution_error", "execution_interrupted"):
                    return resp["prompt_id"], message

    pid, message = _run(go(GRAPH))
    assert message["type"] == "execution_error" and message["data"]["exception_message"] == "boom"
    assert fake.history[pid]["status"]["status_str"] == "error" and fake.history[pid]["status"]["completed"] is False
    fake.inject("hang")

    async def interrupt_later():
        await asyncio.sleep(0.2)
        httpx.post(f"{fake.url}/interrupt")

    async def both():
        task = asyncio.ensure_future(interrupt_later())
        result = await go(GRAPH)
        await task
        return result

    pid, message = _run(both())
    assert message["type"] == "execution_interrupted"


def test_cli_runs_the_fake(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "aimg_app.cli", "fake-comfyui", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/system_stats").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("aimg fake-comfyui did not start")
        assert httpx.post(f"http://127.0.0.1:{port}/fake/inject", json={"kind": "bogus"}).status_code == 400
        assert httpx.get(f"http://127.0.0.1:{port}/fake/stats").json()["executed"] == 0
    finally:
        process.terminate()
        process.wait(10)


def test_post_queue_reads_only_delete_and_clear(fake):
    """As on a real ComfyUI: ``{"cancel": [...]}`` (what comfy-api-client sends) is ignored."""
    fake.inject("hang")
    first = httpx.post(f"{fake.url}/prompt", json={"prompt": GRAPH, "client_id": "q"}).json()["prompt_id"]
    queued = [httpx.post(f"{fake.url}/prompt", json={"prompt": GRAPH, "client_id": "q"}).json()["prompt_id"]
              for _ in range(3)]

    def pending():
        return [entry[1] for entry in httpx.get(f"{fake.url}/queue").json()["queue_pending"]]

    assert httpx.post(f"{fake.url}/queue", json={"cancel": [queued[0]]}).status_code == 200
    assert pending() == queued
    assert httpx.post(f"{fake.url}/queue", json={"delete": [queued[0]]}).status_code == 200
    assert pending() == queued[1:]
    httpx.post(f"{fake.url}/queue", json={"clear": True})
    assert pending() == []
    httpx.post(f"{fake.url}/interrupt", json={"prompt_id": first})
    deadline = time.monotonic() + 5
    while first not in fake.history and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.history[first]["status"]["status_str"] == "error"
    assert all(httpx.get(f"{fake.url}/history/{pid}").json() == {} for pid in queued)  # deleted: never ran


async def _messages_until_done(port: int, client_id: str, post) -> tuple[str, list[dict]]:
    """Post with ``post()`` while listening; the messages up to the closing ``executing`` null."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws?clientId={client_id}") as ws:
        await ws.recv()  # the greeting status
        prompt_id = post()
        messages = []
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            messages.append(message)
            if message["type"] == "executing" and message["data"]["node"] is None \
                    and message["data"]["prompt_id"] == prompt_id:
                return prompt_id, messages


def test_every_prompt_ends_with_status_then_executing_null(fake):
    """Interrupted or failed, like successful: status, then ``{"node": null, "prompt_id"}`` last."""
    def post():
        return httpx.post(f"{fake.url}/prompt", json={"prompt": GRAPH, "client_id": "end"}).json()["prompt_id"]

    fake.inject("execution_error")
    for outcome in ("execution_error", "execution_success"):
        pid, messages = _run(_messages_until_done(fake.port, "end", post))
        kinds = [m["type"] for m in messages]
        assert outcome in kinds
        assert kinds[-2:] == ["status", "executing"], kinds
        assert messages[-1]["data"] == {"node": None, "prompt_id": pid}
    entry = httpx.get(f"{fake.url}/history/{pid}").json()[pid]
    assert entry["prompt"][0] >= 0 and isinstance(entry["prompt"][3]["create_time"], int)
    assert entry["meta"] == {"2": {"node_id": "2", "display_node": "2", "parent_node": None, "real_node_id": "2"}}


def test_an_unreadable_upload_fails_in_load_image(fake):
    httpx.post(f"{fake.url}/upload/image", files={"image": ("junk.png", b"not an image", "image/png")})
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "junk.png"}},
             "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}

    def post():
        return httpx.post(f"{fake.url}/prompt", json={"prompt": graph, "client_id": "junk"}).json()["prompt_id"]

    pid, messages = _run(_messages_until_done(fake.port, "junk", post))
    (error,) = [m["data"] for m in messages if m["type"] == "execution_error"]
    assert error["node_type"] == "LoadImage" and error["exception_type"] == "PIL.UnidentifiedImageError"
    assert httpx.get(f"{fake.url}/history/{pid}").json()[pid]["status"]["status_str"] == "error"
