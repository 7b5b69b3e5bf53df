"""Routing by what a server has: node classes and model files read from /object_info."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aimg_app.devservices.fake_comfyui import FakeComfyUI
from aimg_app.models.item import Item
from aimg_app.models.workflow import WorkflowState
from tests.conftest import assert_ok, sign_up
from tests.generation_support import clear_generation_queues, grant_tier, work

ROOT = Path(__file__).resolve().parents[1]
SD15 = ["f222.safetensors", "v1-5-pruned-emaonly.safetensors"]
SDXL = ["sd_xl_base_1.0.safetensors", "detail-tweaker-xl.safetensors"]


@pytest.fixture(scope="module")
def fakes():
    sd15, sdxl = FakeComfyUI(render_seconds=0.01, model_files=SD15).start(), \
        FakeComfyUI(render_seconds=0.01, model_files=SDXL).start()
    yield sd15, sdxl
    sd15.stop()
    sdxl.stop()


@pytest.fixture(scope="module")
def app(make_app, fakes):
    from tests.plugins import every_hook

    return make_app(plugins=[every_hook], comfyui_urls=tuple(f.url for f in fakes))


@pytest.fixture(autouse=True)
def _empty_queues(app):
    clear_generation_queues(app)
    yield


@pytest.fixture()
def pro(client):
    user = sign_up(client)
    grant_tier(user["user_id"], 1)
    return user


def _run(client, user, **body):
    answer = assert_ok(client.post("/2/enqueueWorkflow", json=body, headers=user["headers"]))["payload"]
    return answer


def _state(answer) -> WorkflowState:
    return WorkflowState.objects(public_id=answer["workflowId"]).first()


def test_each_run_goes_to_a_server_that_has_its_model(app, client, pro, fakes):
    sd15, sdxl = fakes
    runs = [_run(client, pro, workflowTemplateName="txt2img-sdxl", prompt="xl", modelName="sd_xl_base_1.0.safetensors"),
            _run(client, pro, workflowTemplateName="txt2img-sd15", prompt="one-five", modelName="f222.safetensors"),
            _run(client, pro, workflowTemplateName="txt2img-sdxl", prompt="xl lora", modelName="sd_xl_base_1.0.safetensors",
                 lora=["detail-tweaker-xl.safetensors"])]
    work(app)
    assert [_state(r).state for r in runs] == ["completed"] * 3, [_state(r).log for r in runs]
    assert [_state(r).comfy_server for r in runs] == [sdxl.url, sd15.url, sdxl.url]
    assert sd15.stats.prompts_rejected == sdxl.stats.prompts_rejected == 0


def test_a_model_no_server_has_fails_at_once_naming_it(app, client, pro, fakes):
    accepted = [f.stats.prompts_accepted for f in fakes]
    answer = _run(client, pro, workflowTemplateName="txt2img-sdxl", prompt="x", modelName="juggernaut-xl-v9.safetensors",
                  lora=["film-grain-xl.safetensors"])
    work(app)
    state = _state(answer)
    assert state.state == "error"
    assert "juggernaut-xl-v9.safetensors" in state.error_message and "film-grain-xl.safetensors" in state.error_message
    assert state.attempts == 1 and state.comfy_server is None  # not tried anywhere
    (item,) = Item.objects(id__in=answer["itemIds"])
    assert item.status == "failed" and item.error_message == state.error_message
    assert [f.stats.prompts_accepted for f in fakes] == accepted
    assert sum(f.stats.prompts_rejected for f in fakes) == 0


def test_cli_lists_what_each_server_has(app, fakes, services):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    env.update({k: v for k, v in services.items() if k.startswith("AIMG_")}, AIMG_DATA_DIR=str(services["data_dir"]))
    args = [sys.executable, "-m", "aimg_app.cli", "comfyui-servers"]
    for fake in fakes:
        args += ["--comfyui", fake.url]
    out = subprocess.run(args + ["--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = {row["url"]: row for row in json.loads(out.stdout)}
    sd15, sdxl = fakes
    assert rows[sd15.url]["health"] == "up"
    assert rows[sd15.url]["capabilities"]["models"]["CheckpointLoaderSimple.ckpt_name"] == SD15
    assert rows[sdxl.url]["capabilities"]["models"]["LoraLoader.lora_name"] == SDXL
    assert "KSampler" in rows[sdxl.url]["capabilities"]["nodes"]
    text = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout
    assert sd15.url in text and "f222.safetensors" in text
