"""The template author's guide in docs/plugins.md works as written: its example, installed
as a package of its own (dist-info and entry point), runs end to end on the fake ComfyUI."""
from __future__ import annotations

import importlib
import io
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from aimg_app.devservices.fake_comfyui import FakeComfyUI
from aimg_app.models.item import Item
from aimg_app.models.workflow import WorkflowState
from tests.conftest import assert_error, assert_ok, sign_up
from tests.generation_support import clear_generation_queues, grant_tier, work

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def _example() -> str:
    text = GUIDE.read_text()
    match = re.search(r"<!-- template-guide-example -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "the guide's example is marked <!-- template-guide-example -->"
    return match.group(1)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "sticker_templates").mkdir()
    (site / "sticker_templates" / "__init__.py").write_text(_example())
    dist = site / "sticker_templates-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sticker-templates\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[aimg]\nsticker_templates = sticker_templates\n")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield site
    sys.path.remove(str(site))
    sys.modules.pop("sticker_templates", None)
    importlib.invalidate_caches()


@pytest.fixture(scope="module")
def comfy():
    with FakeComfyUI(render_seconds=0.01) as fake:
        yield fake


@pytest.fixture(scope="module")
def app(make_app, installed, comfy):
    app = make_app(comfyui_urls=(comfy.url,))
    clear_generation_queues(app)
    return app


def test_the_guides_example_installs_and_runs(app, client, comfy):
    user = sign_up(client)
    grant_tier(user["user_id"], 1)
    templates = assert_ok(client.get("/2/getAggregatedWorkflowTemplates", headers=user["headers"]))["payload"]
    names = [t["name"] for t in (templates if isinstance(templates, list) else templates.get("templates", []))]
    assert "stickers" in names, names
    answer = assert_ok(client.post("/2/enqueueWorkflow", json={
        "workflowTemplateName": "stickers", "prompt": "a cat", "width": 256, "batchSize": 3},
        headers=user["headers"]))["payload"]
    assert len(answer["itemIds"]) == 3
    work(app)
    state = WorkflowState.objects(public_id=answer["workflowId"]).first()
    assert state.state == "completed", state.log
    graph = __import__("json").loads(state.graph_json)
    assert graph["5"]["inputs"] == {"width": 256, "height": 256, "batch_size": 3}  # typed values
    assert graph["6"]["inputs"]["text"] == "sticker of a cat"
    items = list(Item.objects(id__in=answer["itemIds"]))
    assert {i.status for i in items} == {"completed"} and {(i.width, i.height) for i in items} == {(256, 256)}
    assert {i.prompt for i in items} == {"a cat"} and all(i.seed is not None for i in items)
    data = client.get(f"/getFile?id={items[0].file_id}", headers=user["headers"]).data
    assert Image.open(io.BytesIO(data)).size == (256, 256)


def test_a_field_the_template_has_no_parameter_for_is_refused(app, client):
    user = sign_up(client)
    grant_tier(user["user_id"], 1)
    assert_error(client.post("/2/enqueueWorkflow", json={"workflowTemplateName": "stickers", "prompt": "x",
                                                         "steps": 20}, headers=user["headers"]),
                 400, "stickers", "steps")
    assert_error(client.post("/2/enqueueWorkflow", json={"workflowTemplateName": "stickers", "prompt": "x",
                                                         "batchSize": 5}, headers=user["headers"]),
                 400, "at most 4")
