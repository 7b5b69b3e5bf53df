"""API2: Workflows through the HTTP API, with in-process workers on a fake ComfyUI."""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from aimg_app.devservices.fake_comfyui import FakeComfyUI
from aimg_app.models import User
from aimg_app.models.item import Item
from aimg_app.models.workflow import WorkflowState
from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, sign_up
from tests.generation_support import clear_generation_queues, grant_tier, work


@pytest.fixture(scope="module")
def comfy():
    with FakeComfyUI(render_seconds=0.02) as fake:
        yield fake


@pytest.fixture(scope="module")
def app(make_app, comfy):
    from tests.plugins import every_hook

    return make_app(plugins=[every_hook], comfyui_urls=(comfy.url,))


@pytest.fixture(autouse=True)
def _empty_queues(app):
    clear_generation_queues(app)
    yield


@pytest.fixture()
def pro(client):
    user = sign_up(client)
    grant_tier(user["user_id"], 1)
    return user


def _enqueue(client, user, **body):
    return client.post("/2/enqueueWorkflow", json=body, headers=user["headers"])


def test_api2_needs_a_pro_tier(client, user):
    for resp in (client.get("/2/getAggregatedWorkflowTemplates", headers=user["headers"]),
                 client.get("/2/getFileGroupItems?fileGroup=loras", headers=user["headers"]),
                 client.get("/2/getWorkflowStatus?workflowId=x", headers=user["headers"]),
                 _enqueue(client, user, workflowTemplateName="test-blank")):
        assert_error(resp, 403, "tier")
    assert_error(client.get("/2/getAggregatedWorkflowTemplates"), 400, "X-Session-ID")
    # an expired tier is no tier
    grant_tier(user["user_id"], 2, days=-1)
    assert_error(client.get("/2/getAggregatedWorkflowTemplates", headers=user["headers"]), 403)


def test_templates_and_file_groups(client, pro):
    templates = assert_ok(client.get("/2/getAggregatedWorkflowTemplates", headers=pro["headers"]))["payload"]
    names = [t["name"] for t in templates]
    assert names[:5] == ["txt2img-sd15", "txt2img-sdxl", "img2img-sd15", "video-frames", "img2video-frames"]
    sdxl = templates[1]
    assert sdxl["deployments"] == ["a2stage", "a2prod"]
    assert sdxl["workflowTemplateFiles"]["loras"]["supportFileType"] == "lora"
    steps = next(p for p in sdxl["parameters"] if p["name"] == "Steps")
    assert steps == {"name": "Steps", "dataType": "number", "description": "Sampling steps.", "defaultValue": "25",
                     "replaceFromString": "{{STEPS}}", "isOptional": False, "optionName": "steps",
                     "isAlwaysVisible": True, "isHidden": False, "min": "1", "max": "60", "increment": "1"}
    lora = next(p for p in sdxl["parameters"] if p["name"] == "Lora 1")
    assert lora["dataType"] == "filesGroup" and lora["fileGroup"] == "loras"
    only = assert_ok(client.get("/2/getAggregatedWorkflowTemplates?workflowTemplateNames=test-blank,video-frames",
                                headers=pro["headers"]))["payload"]
    assert [t["name"] for t in only] == ["video-frames", "test-blank"]
    files = assert_ok(client.get("/2/getFileGroupItems?fileGroup=loras", headers=pro["headers"]))["payload"]
    assert files == {"fileNames": ["detail-tweaker-xl.safetensors", "film-grain-xl.safetensors"]}
    assert_error(client.get("/2/getFileGroupItems?fileGroup=nope", headers=pro["headers"]), 404, "nope")
    assert_error(client.get("/2/getFileGroupItems", headers=pro["headers"]), 400, "fileGroup")


def test_enqueue_workflow_batch_of_three_end_to_end(app, client, pro, comfy):
    answer = assert_ok(_enqueue(client, pro, workflowTemplateName="txt2img-sd15", prompt="three owls", seed=7,
                                steps=3, batchSize=3, width=320, height=256,
                                parameters=[{"name": "CFG Scale", "value": "6.5"},
                                            {"name": "Sampler", "value": "euler"}]))["payload"]
    assert len(answer["itemIds"]) == 3
    wid = answer["workflowId"]
    queued = assert_ok(client.get(f"/2/getWorkflowStatus?workflowId={wid}", headers=pro["headers"]))["payload"]
    assert queued["isStarted"] is False and queued["state"] == "queued" and queued["queuePosition"] == 1
    assert queued["startTime"] is None and queued["itemIds"] == answer["itemIds"]
    assert queued["api2userEmail"] == pro["email"]
    params = {p["name"]: p["value"] for p in queued["runParamaters"]["parameters"]}
    assert params["Seed"] == "7" and params["CFG Scale"] == "6.5" and params["Batch Size"] == "3"
    assert params["Model"] == "f222.safetensors"  # the default
    graph = json.loads(queued["workflowJsonString"])
    assert graph["5"]["inputs"] == {"width": 320, "height": 256, "batch_size": 3}
    assert graph["3"]["inputs"]["cfg"] == 6.5 and graph["3"]["inputs"]["seed"] == 7

    assert work(app) == 1
    done = assert_ok(client.get(f"/2/getWorkflowStatus?workflowId={wid}", headers=pro["headers"]))["payload"]
    assert done["state"] == "completed" and done["isComplete"] is True and done["isError"] is False
    assert done["startTime"] and done["endTime"] and "queuePosition" not in done
    assert len(done["outputFiles"]) == 3 and all(f["isMainOutput"] for f in done["outputFiles"])
    assert {(f["width"], f["height"], f["type"]) for f in done["outputFiles"]} == {(320, 256, "image/png")}
    assert any("submitted to" in line for line in done["log"])
    # the log is shown to the user: no generation server's address, no internal queue name
    assert not [line for line in done["log"] if "127.0.0.1" in line or "http" in line or "wf-" in line]
    urls = set()
    for item_id in answer["itemIds"]:
        status = assert_ok(client.get(f"/getItemStatus?imageID={item_id}", headers=pro["headers"]))["payload"]
        assert status["status"] == "completed"
        urls.add(status["url"])
        picture = Image.open(io.BytesIO(client.get(status["url"]).data))
        assert picture.size == (320, 256)
    assert len(urls) == 3
    items = list(Item.objects(id__in=answer["itemIds"]))
    assert len({i.batch_id for i in items}) == 1 and {i.generator_version for i in items} == {"2"}
    assert {i.workflow_template_name for i in items} == {"txt2img-sd15"}
    assert User.objects(id=pro["user_id"]).first().item_count == 3
    # both forms: workflowIds answers an array
    many = assert_ok(client.get(f"/2/getWorkflowStatus?workflowIds={wid}", headers=pro["headers"]))["payload"]
    assert isinstance(many, list) and many[0]["publicId"] == wid


def test_status_is_visible_while_running(app, client, pro, comfy):
    comfy.render_seconds = 1.0
    try:
        answer = assert_ok(_enqueue(client, pro, workflowTemplateName="txt2img-sd15", prompt="slow", steps=10))["payload"]
        import threading

        seen = {}

        def watch():
            import time

            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                state = WorkflowState.objects(public_id=answer["workflowId"]).first()
                if state.state == "running" and (state.progress or 0) > 0:
                    seen["state"] = state
                    seen["item"] = Item.objects(id=answer["itemIds"][0]).first()
                    return
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        work(app)
        watcher.join()
    finally:
        comfy.render_seconds = 0.02
    assert seen, "the run was never seen running with progress"
    assert seen["item"].status == "running" and 0 < seen["item"].progress < 1
    assert any(line.endswith(" started") for line in seen["state"].log)


def test_lora_fields_map_to_named_parameters(app, client, pro, comfy):
    answer = assert_ok(_enqueue(client, pro, workflowTemplateName="txt2img-sdxl", prompt="x", width=1024,
                                lora=["film-grain-xl.safetensors"], lora_strength=[0.7]))["payload"]
    state = WorkflowState.objects(public_id=answer["workflowId"]).first()
    graph = json.loads(state.graph_json)
    assert graph["10"]["inputs"]["lora_name"] == "film-grain-xl.safetensors"
    assert graph["10"]["inputs"]["strength_model"] == 0.7
    item = Item.objects(id=answer["itemIds"][0]).first()
    assert item.lora == ["film-grain-xl.safetensors"] and item.lora_strength == [0.7]


@pytest.mark.parametrize("body, fragments", [
    ({"workflowTemplateName": "nope"}, ["unknown workflow template", "nope"]),
    ({"workflowTemplateName": "txt2img-sd15"}, ["positive prompt", "required"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "steps": 0}, ["steps", "at least 1"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "steps": 51}, ["steps", "at most 50"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "width": 300}, ["width", "multiple of 64"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "batchSize": 9}, ["batch size", "at most 8"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "modelName": "evil.ckpt"}, ["model", "one of"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "subseed": 3}, ["no parameter", "subseed"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x",
      "parameters": [{"name": "Steps", "value": "abc"}]}, ["steps", "number"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x",
      "parameters": [{"name": "Bogus", "value": "1"}]}, ["bogus"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x",
      "parameters": [{"name": "Steps", "value": "10"}, {"name": "Steps", "value": "10"}]}, ["twice"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "steps": 5,
      "parameters": [{"name": "Steps", "value": "10"}]}, ["steps", "different"]),
    ({"workflowTemplateName": "txt2img-sdxl", "prompt": "x", "lora": ["nope.safetensors"]}, ["lora 1", "loras"]),
    ({"workflowTemplateName": "txt2img-sdxl", "prompt": "x", "lora": ["a"], "lora_strength": [1, 2]}, ["same length"]),
    ({"workflowTemplateName": "img2img-sd15", "prompt": "x",
      "parameters": [{"name": "Input Image", "value": "no-such-file"}]}, ["input image", "does not exist"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "parameters": [{"name": "Steps", "value": [1]}]},
     ["parameters"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "extra": 1}, ["extra"]),
    # integers beyond any float (JSON allows them)
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "parameters": [{"name": "Steps", "value": 10**400}]},
     ["steps", "at most 50"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "steps": 10**400}, ["steps", "at most 50"]),
    ({"workflowTemplateName": "txt2img-sd15", "prompt": "x", "seed": -10**400}, ["seed"]),
])
def test_enqueue_workflow_refusals(client, pro, body, fragments):
    assert_error(_enqueue(client, pro, **body), 400, *fragments)
    assert Item.objects(user_id=pro["user_id"]).count() == 0
    assert WorkflowState.objects(user_id=pro["user_id"]).count() == 0


def test_img2img_uploads_the_input_to_comfyui(app, client, pro, comfy):
    buf = io.BytesIO()
    Image.new("RGB", (200, 120), (200, 10, 10)).save(buf, format="PNG")
    from aimg_app.services.files import store_file

    with app.app_context():
        file_id = store_file(app.extensions["aimg"].files, data=buf.getvalue(), file_name="start.png",
                             content_type="image/png", domain="localhost", owner_id=pro["user_id"]).id
    stranger = sign_up(client)
    grant_tier(stranger["user_id"], 1)
    assert_error(_enqueue(client, stranger, workflowTemplateName="img2img-sd15", prompt="x",
                          parameters=[{"name": "Input Image", "value": file_id}]), 400, "does not exist")
    answer = assert_ok(_enqueue(client, pro, workflowTemplateName="img2img-sd15", prompt="x", steps=2,
                                parameters=[{"name": "Input Image", "value": file_id}]))["payload"]
    work(app)
    state = WorkflowState.objects(public_id=answer["workflowId"]).first()
    assert state.state == "completed", state.log
    graph = comfy.history[state.prompt_id]["prompt"][2]
    assert graph["11"]["inputs"]["image"] in comfy.inputs


def test_workflow_concurrency_per_tier(app, client, pro):
    # test-blank: tier 1 may have 3 Items open at once
    assert_ok(_enqueue(client, pro, workflowTemplateName="test-blank", batchSize=2))
    assert_error(_enqueue(client, pro, workflowTemplateName="test-blank", batchSize=2), 429, "limit is 3")
    assert_ok(_enqueue(client, pro, workflowTemplateName="test-blank", batchSize=1))
    grant_tier(pro["user_id"], 2)
    assert_ok(_enqueue(client, pro, workflowTemplateName="test-blank", batchSize=2))  # tier 2: 5
    work(app)


def test_a_batch_over_the_tier_cap_is_refused_saying_why(client, pro):
    # test-blank allows batches of 4; tier 1 may run 3 Items at once
    assert_error(_enqueue(client, pro, workflowTemplateName="test-blank", batchSize=4), 400,
                 "batch of 4", "at most 3")


def test_workflow_status_is_private(client, pro):
    answer = assert_ok(_enqueue(client, pro, workflowTemplateName="test-blank"))["payload"]
    other = sign_up(client)
    grant_tier(other["user_id"], 1)
    assert_error(client.get(f"/2/getWorkflowStatus?workflowId={answer['workflowId']}", headers=other["headers"]),
                 404, answer["workflowId"])
    assert_error(client.get("/2/getWorkflowStatus", headers=pro["headers"]), 400, "workflowId")
    assert_ok(client.get(f"/2/getWorkflowStatus?workflowId={answer['workflowId']}",
                         headers={**other["headers"], **ADMIN_HEADERS}))


def test_enqueue_workflow_idempotency(client, pro):
    headers = {**pro["headers"], "Idempotency-Key": "wf-key-1"}
    body = {"workflowTemplateName": "test-blank", "batchSize": 2}
    first = assert_ok(client.post("/2/enqueueWorkflow", json=body, headers=headers))["payload"]
    again = assert_ok(client.post("/2/enqueueWorkflow", json=body, headers=headers))["payload"]
    assert first == again
    assert WorkflowState.objects(user_id=pro["user_id"]).count() == 1
    assert_error(client.post("/2/enqueueWorkflow", json=body, headers={**pro["headers"], "Idempotency-Key": " "}),
                 400, "Idempotency-Key")


def test_cancel_by_workflow_id(app, client, pro):
    answer = assert_ok(_enqueue(client, pro, workflowTemplateName="test-blank", batchSize=2))["payload"]
    result = assert_ok(client.post("/cancelGeneration", json={"workflowId": answer["workflowId"]},
                                   headers=pro["headers"]))["payload"]
    assert {r["status"] for r in result} == {"cancelled"} and len(result) == 2
    status = assert_ok(client.get(f"/2/getWorkflowStatus?workflowId={answer['workflowId']}",
                                  headers=pro["headers"]))["payload"]
    assert status["isError"] is True and status["errorMessage"] == "Cancelled."
    assert_error(client.post("/cancelGeneration", json={}, headers=pro["headers"]), 400, "exactly one")


def test_estimated_seconds_remaining_is_learned_from_measured_runs(app, client, pro, comfy):
    # a model no other test runs: its service time is learned apart (template|model)
    app.extensions["aimg"].redis.hdel("aimg:eta:seconds-per-unit", "txt2img-sd15|realistic-vision-v5.safetensors",
                                      "txt2img-sd15")

    def status(answer):
        return assert_ok(client.get(f"/2/getWorkflowStatus?workflowId={answer['workflowId']}",
                                    headers=pro["headers"]))["payload"]

    body = {"workflowTemplateName": "txt2img-sd15", "prompt": "eta", "steps": 10,
            "modelName": "realistic-vision-v5.safetensors"}
    first = assert_ok(_enqueue(client, pro, **body))["payload"]
    assert "estimatedSecondsRemaining" not in status(first)  # nothing learned yet
    comfy.render_seconds = 0.3
    try:
        work(app)
        one, two = (assert_ok(_enqueue(client, pro, **body))["payload"] for _ in range(2))
        eta_one, eta_two = status(one)["estimatedSecondsRemaining"], status(two)["estimatedSecondsRemaining"]
        assert 0.2 <= eta_one <= 30.0, eta_one  # learned from this machine's own (possibly loaded) runs
        assert eta_two > eta_one  # one run ahead of it
        item = assert_ok(client.get(f"/getItemStatus?imageID={two['itemIds'][0]}", headers=pro["headers"]))["payload"]
        assert item["estimatedSecondsRemaining"] == eta_two
        bigger = assert_ok(_enqueue(client, pro, **body, width=768, height=768))["payload"]
        assert status(bigger)["estimatedSecondsRemaining"] > eta_two  # a larger run, further back
        work(app)
    finally:
        comfy.render_seconds = 0.02
    assert "estimatedSecondsRemaining" not in status(two)  # done
