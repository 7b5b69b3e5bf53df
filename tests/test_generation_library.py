"""Generation meets the library: a generated Item lands in the folder it was asked for, and
the system report queues review it once it completes."""
from __future__ import annotations

import pytest

from aimg_app.devservices.fake_comfyui import FakeComfyUI
from tests.conftest import ADMIN_HEADERS, assert_ok
from tests.generation_support import clear_generation_queues, work


@pytest.fixture(scope="module")
def comfy():
    with FakeComfyUI(render_seconds=0.02) as fake:
        yield fake


@pytest.fixture(scope="module")
def app(make_app, comfy):
    from tests.plugins import every_hook

    app = make_app(plugins=[every_hook], comfyui_urls=(comfy.url,), generation_lease_s=5.0)
    clear_generation_queues(app)
    return app


def test_generated_item_lands_in_its_folder_and_is_reviewed(app, client, user):
    folder = assert_ok(client.post("/createSelfFolder", json={"name": "Foxes"}, headers=user["headers"]))["payload"]
    status = assert_ok(client.post("/generateImage", json={"prompt": "a fox, ForbiddenWord", "folderID": folder["id"]},
                                   headers=user["headers"]))["payload"]
    assert work(app) == 1
    item = assert_ok(client.get(f"/getItem?imageID={status['imageID']}", headers=user["headers"]))["payload"]
    assert item["folderID"] == folder["id"]
    me = assert_ok(client.get("/getSelfUser", headers=user["headers"]))["payload"]
    assert me["itemCount"] == 1 and me["rootFolderItemCount"] == 0
    reports = assert_ok(client.get("/getReports?reportQueues=Prompt Filter", headers={**ADMIN_HEADERS, **user["headers"]}))
    assert [r["itemId"] for r in reports["payload"]] == [status["imageID"]]
