"""The Image Generation chapter through the HTTP API, with in-process workers on a fake ComfyUI."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from aimg_app.devservices.fake_comfyui import FakeComfyUI
from aimg_app.models import User
from aimg_app.models.file import StoredFile
from aimg_app.models.item import Item
from aimg_app.models.workflow import WorkflowState
from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, new_session_headers, sign_up
from tests.generation_support import clear_generation_queues, grant_tier, work


@pytest.fixture(scope="module")
def comfy():
    with FakeComfyUI(render_seconds=0.05) as fake:
        yield fake


@pytest.fixture(scope="module")
def app(make_app, comfy):
    from tests.plugins import every_hook

    app = make_app(plugins=[every_hook], comfyui_urls=(comfy.url,), generation_lease_s=5.0)
    clear_generation_queues(app)
    return app


@pytest.fixture(autouse=True)
def _empty_queues(app):
    clear_generation_queues(app)
    yield


def _png(client, url: str) -> Image.Image:
    resp = client.get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return Image.open(io.BytesIO(resp.data))


# --- catalogue --------------------------------------------------------------------------


def test_get_models_lists_plugin_models_in_order(client):
    body = assert_ok(client.get("/getModels", headers=new_session_headers()))
    ids = [m["modelID"] for m in body["payload"]]
    assert ids[:3] == ["f222", "sdxl", "model3"] and "test-model" in ids
    f222 = body["payload"][0]
    assert f222["mediaType"] == "StaticImage" and f222["minCfgScale"] == 1 and f222["maxCfgScale"] == 12
    assert f222["defaultResolution"] == [512, 512] and "DPM++ 2M Karras" in f222["allowedSamplers"]
    only = assert_ok(client.get("/getModels?modelIDs=model3, sdxl", headers=new_session_headers()))["payload"]
    assert [m["modelID"] for m in only] == ["sdxl", "model3"]
    assert only[1]["mediaType"] == "Video"


def test_sample_prompts(client):
    every = assert_ok(client.get("/getSamplePrompts"))["payload"]
    assert {"positivePrompt": "a test prompt", "negativePrompt": "nothing"} in every
    one = assert_ok(client.get("/getSamplePrompts?randomOne=true"))["payload"]
    assert len(one) == 1 and one[0] in every


def test_queue_lengths_come_from_redis(client, user):
    rows = assert_ok(client.get("/getQueuesLength?modelIDs=test-model"))["payload"]
    assert rows == [{"modelID": "test-model", "queueID": "gen-test-model", "queueLength": 0},
                    {"modelID": "test-model", "queueID": "gen-p1-test-model", "queueLength": 0}]
    assert_ok(client.post("/generateImage", json={"prompt": "x", "modelName": "test-model"}, headers=user["headers"]))
    rows = assert_ok(client.get("/getQueuesLength?modelIDs=test-model"))["payload"]
    assert rows[0]["queueLength"] == 1 and rows[1]["queueLength"] == 0
    every = assert_ok(client.get("/getQueuesLength"))["payload"]
    assert {"modelID": "f222", "queueID": "gen-p1-f222", "queueLength": 0} in every
    assert any(r["queueID"] == "wf-p1-txt2img-sd15" for r in every)


# --- end to end -------------------------------------------------------------------------


def test_generate_image_end_to_end(app, client, user, comfy):
    resp = client.post("/generateImage", json={"prompt": "a red fox in the snow", "seed": 42, "steps": 4,
                                               "width": 576, "height": 512}, headers=user["headers"])
    status = assert_ok(resp)["payload"]
    assert status["status"] == "queued" and status["mtype"] == "image" and status["queuePosition"] == 1
    assert status["ignoredWords"] == ""
    image_id = status["imageID"]
    assert work(app) == 1
    done = assert_ok(client.get(f"/getItemStatus?imageID={image_id}", headers=user["headers"]))["payload"]
    assert done["status"] == "completed", done
    assert done["progress"] == 1 and "queuePosition" not in done
    picture = _png(client, done["url"])
    assert picture.format == "PNG" and picture.size == (576, 512)
    item = Item.objects(id=image_id).first()
    assert (item.width, item.height, item.model_id, item.seed, item.steps) == (576, 512, "f222", 42, 4)
    assert item.sampler == "DPM++ 2M Karras" and item.generator_version == "1"
    graph = comfy.history[WorkflowState.objects(public_id=item.workflow_id).first().prompt_id]["prompt"][2]
    assert graph["3"]["inputs"]["sampler_name"] == "dpmpp_2m" and graph["3"]["inputs"]["scheduler"] == "karras"
    assert graph["4"]["inputs"]["ckpt_name"] == "f222.safetensors" and graph["6"]["inputs"]["text"] == "a red fox in the snow"
    assert User.objects(id=user["user_id"]).first().item_count == 1


def test_generate_video_end_to_end_has_frames(app, client, user):
    status = assert_ok(client.post("/generateVideo", json={"prompt": "waves", "steps": 3},
                                   headers=user["headers"]))["payload"]
    assert status["mtype"] == "video"
    work(app)
    done = assert_ok(client.get(f"/getItemStatus?imageID={status['imageID']}", headers=user["headers"]))["payload"]
    assert done["status"] == "completed", done
    frames = done["frames"]
    assert len(frames) == 8 and [f["frameNumber"] for f in frames] == list(range(8))
    assert {f["frameCount"] for f in frames} == {8}
    assert _png(client, frames[3]["frameUrl"]).size == (512, 512)
    video = Image.open(io.BytesIO(client.get(done["url"]).data))
    assert video.format == "WEBP" and getattr(video, "n_frames", 1) == 8


def test_video_from_an_input_image_with_a_control_net_preset(app, client, user, comfy):
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(buf, format="PNG")
    import base64

    data_uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    status = assert_ok(client.post("/generateVideo", json={"prompt": "grass", "steps": 2, "input": data_uri,
                                                           "controlNetPreset": "depth"},
                                   headers=user["headers"]))["payload"]
    work(app)
    done = assert_ok(client.get(f"/getItemStatus?imageID={status['imageID']}", headers=user["headers"]))["payload"]
    assert done["status"] == "completed", done
    state = WorkflowState.objects(item_ids=status["imageID"]).first()
    graph = comfy.history[state.prompt_id]["prompt"][2]
    assert graph["20"]["class_type"] == "ControlNetLoader" and graph["11"]["inputs"]["image"].startswith("aimg/")
    assert_error(client.post("/generateVideo", json={"prompt": "x", "controlNetPreset": "depth"},
                             headers=user["headers"]), 400, "input image")
    assert_error(client.post("/generateVideo", json={"prompt": "x", "input": data_uri, "controlNetPreset": "nope"},
                             headers=user["headers"]), 400, "controlNetPreset", "depth")
    assert_error(client.post("/generateVideo", json={"prompt": "x", "input": "data:image/png;base64,AAAA"},
                             headers=user["headers"]), 400, "input")


def test_anonymous_generation_without_a_registration_wall(app, client):
    headers = new_session_headers()
    status = assert_ok(client.post("/generateImage", json={"prompt": "x", "modelName": "test-model"},
                                   headers=headers))["payload"]
    work(app)
    done = assert_ok(client.get(f"/getItemStatus?imageID={status['imageID']}", headers=headers))["payload"]
    assert done["status"] == "completed"
    # another session cannot see it; an admin can
    assert_error(client.get(f"/getItemStatus?imageID={status['imageID']}", headers=new_session_headers()), 404)
    assert_ok(client.get(f"/getItemStatus?imageID={status['imageID']}", headers=ADMIN_HEADERS))
    assert_error(client.post("/generateVideo", json={"prompt": "x"}, headers=new_session_headers()), 401, "sign up")


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize("body, fragments", [
    ({"prompt": "x", "modelName": "nope"}, ["unknown model", "nope"]),
    ({"prompt": "x", "modelName": "model3"}, ["generatevideo"]),
    ({"prompt": "x", "steps": 0}, ["steps"]),
    ({"prompt": "x", "steps": 51}, ["steps", "50"]),
    ({"prompt": "x", "width": 500}, ["width"]),
    ({"prompt": "x", "height": 1024}, ["height"]),
    ({"prompt": "x", "width": 768, "height": 768}, ["pixels"]),
    ({"prompt": "x", "sampler": "Fancy"}, ["sampler"]),
    ({"prompt": "x", "cfgscale": 0.5}, ["cfgscale"]),
    ({"prompt": "x", "cfgscale": 12.5}, ["cfgscale"]),
    ({"prompt": ""}, ["prompt"]),
    ({"negprompt": "x"}, ["prompt"]),
    ({"prompt": "x", "bogus": 1}, ["bogus"]),
    ({"prompt": "forbiddenword"}, ["empty"]),
])
def test_generate_image_refusals(client, user, body, fragments):
    assert_error(client.post("/generateImage", json=body, headers=user["headers"]), 400, *fragments)
    assert Item.objects(user_id=user["user_id"]).count() == 0


def test_tier_and_registration_wall(client, user):
    assert_error(client.post("/generateImage", json={"prompt": "x", "modelName": "sdxl"}, headers=new_session_headers()),
                 401, "sign up")
    assert_error(client.post("/generateImage", json={"prompt": "x", "modelName": "sdxl", "width": 1024, "height": 1024},
                             headers=user["headers"]), 403, "tier 1")
    grant_tier(user["user_id"], 1)
    status = assert_ok(client.post("/generateImage", json={"prompt": "x", "modelName": "sdxl", "width": 1024,
                                                           "height": 1024}, headers=user["headers"]))["payload"]
    assert Item.objects(id=status["imageID"]).first().queue_name == "gen-p1-sdxl"


def test_prompt_filter_reports_ignored_words(app, client, user, comfy):
    status = assert_ok(client.post("/generateImage", json={"prompt": "a cat, ForbiddenWord, on a mat"},
                                   headers=user["headers"]))["payload"]
    assert status["ignoredWords"] == "forbiddenword"
    item = Item.objects(id=status["imageID"]).first()
    assert item.prompt == "a cat, ForbiddenWord, on a mat" and "orbidden" not in item.filtered_prompt
    state = WorkflowState.objects(public_id=item.workflow_id).first()
    assert "orbidden" not in state.graph_json


def test_abuse_levels(app, client, user):
    User.objects(id=user["user_id"]).update_one(set__abuse=9)
    assert_error(client.post("/generateImage", json={"prompt": "x"}, headers=user["headers"]), 403)
    User.objects(id=user["user_id"]).update_one(set__abuse=3)
    assert_ok(client.post("/generateImage", json={"prompt": "x"}, headers=user["headers"]))
    assert_error(client.post("/generateImage", json={"prompt": "x"}, headers=user["headers"]), 429, "limit is 1")
    work(app)
    # level 5: never the priority queues, even with a PRO tier (and still one at a time)
    User.objects(id=user["user_id"]).update_one(set__abuse=5)
    grant_tier(user["user_id"], 2)
    status = assert_ok(client.post("/generateImage", json={"prompt": "x"}, headers=user["headers"]))["payload"]
    assert Item.objects(id=status["imageID"]).first().queue_name == "gen-f222"


# --- queues -----------------------------------------------------------------------------


def test_concurrency_limit_per_model_and_tier(app, client, user):
    for _ in range(2):  # test-model: tier0Concurrent 2
        assert_ok(client.post("/generateImage", json={"prompt": "x", "modelName": "test-model"}, headers=user["headers"]))
    assert_error(client.post("/generateImage", json={"prompt": "x", "modelName": "test-model"}, headers=user["headers"]),
                 429, "test-model", "limit is 2")
    # another model has its own limit
    assert_ok(client.post("/generateImage", json={"prompt": "x"}, headers=user["headers"]))
    work(app)
    assert_ok(client.post("/generateImage", json={"prompt": "x", "modelName": "test-model"}, headers=user["headers"]))


def test_priority_jobs_run_first_and_positions_count_them(app, client):
    plain = [sign_up(client) for _ in range(2)]
    pro = sign_up(client)
    grant_tier(pro["user_id"], 1)
    first = assert_ok(client.post("/generateImage", json={"prompt": "a", "modelName": "test-model"},
                                  headers=plain[0]["headers"]))["payload"]
    second = assert_ok(client.post("/generateImage", json={"prompt": "b", "modelName": "test-model"},
                                   headers=plain[1]["headers"]))["payload"]
    vip = assert_ok(client.post("/generateImage", json={"prompt": "c", "modelName": "test-model"},
                                headers=pro["headers"]))["payload"]
    assert (first["queuePosition"], second["queuePosition"], vip["queuePosition"]) == (1, 2, 1)
    moved = assert_ok(client.get(f"/getItemStatus?imageID={first['imageID']}", headers=plain[0]["headers"]))["payload"]
    assert moved["queuePosition"] == 2  # the priority job goes before it
    work(app, max_jobs=1)
    assert Item.objects(id=vip["imageID"]).first().status == "completed"
    assert Item.objects(id=first["imageID"]).first().status == "queued"
    work(app)
    assert {i.status for i in Item.objects(id__in=[first["imageID"], second["imageID"]])} == {"completed"}
    order = sorted(Item.objects(id__in=[first["imageID"], second["imageID"], vip["imageID"]]),
                   key=lambda i: i.completed_date)
    assert [i.id for i in order] == [vip["imageID"], first["imageID"], second["imageID"]]


# --- idempotency and cancelling ---------------------------------------------------------


def test_idempotency_key_returns_the_first_answer(client, user):
    headers = {**user["headers"], "Idempotency-Key": "gen-1"}
    first = assert_ok(client.post("/generateImage", json={"prompt": "x"}, headers=headers))["payload"]
    again = assert_ok(client.post("/generateImage", json={"prompt": "x"}, headers=headers))["payload"]
    assert again == first
    assert Item.objects(user_id=user["user_id"]).count() == 1
    assert_error(client.post("/generateImage", json={"prompt": "y"}, headers=headers), 409, "different request")
    other = sign_up(client)
    theirs = assert_ok(client.post("/generateImage", json={"prompt": "x"},
                                   headers={**other["headers"], "Idempotency-Key": "gen-1"}))["payload"]
    assert theirs["imageID"] != first["imageID"]


def test_an_answer_stored_by_the_earlier_version_is_replayed_after_an_upgrade(app, client, user):
    """Answers stored before an upgrade (kept 24 h) held the wire's names; a repeat across the
    upgrade must get that first answer, not a 500 or a second generation."""
    import json

    headers = {**user["headers"], "Idempotency-Key": "gen-upgrade"}
    first = assert_ok(client.post("/generateImage", json={"prompt": "x, y"}, headers=headers))["payload"]
    redis = app.extensions["aimg"].redis
    (key,) = [k for k in redis.scan_iter("aimg:idem:*") if json.loads(redis.get(k)).get("answer", {}).get(
        "image_id") == first["imageID"]]
    stored = json.loads(redis.get(key))
    redis.set(key, json.dumps({**stored, "answer": {**first, "ignoredWords": "y"}}), ex=3600)
    again = assert_ok(client.post("/generateImage", json={"prompt": "x, y"}, headers=headers))["payload"]
    assert again == {**first, "ignoredWords": "y"}
    assert Item.objects(user_id=user["user_id"]).count() == 1


def test_cancel_a_queued_generation(app, client, user):
    status = assert_ok(client.post("/generateImage", json={"prompt": "x"}, headers=user["headers"]))["payload"]
    stranger = sign_up(client)
    assert_error(client.post("/cancelGeneration", json={"imageID": status["imageID"]}, headers=stranger["headers"]), 404)
    answer = assert_ok(client.post("/cancelGeneration", json={"imageID": status["imageID"]},
                                   headers=user["headers"]))["payload"]
    assert answer == [{"imageID": status["imageID"], "status": "cancelled", "cancelled": True}]
    assert work(app) == 0  # it left its queue
    done = assert_ok(client.get(f"/getItemStatus?imageID={status['imageID']}", headers=user["headers"]))["payload"]
    assert done["status"] == "cancelled" and done["errorMessage"] == "Cancelled."
    assert StoredFile.objects(id__startswith=status["imageID"]).count() == 0
