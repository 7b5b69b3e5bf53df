"""The generation and workflow response schemas own the contract's wire names: each one,
dumped from a fully populated object, has every member of its contract object with the
contract's type (the tables of the API's Objects chapter, transcribed here)."""
from __future__ import annotations

import datetime
import json
from dataclasses import asdict

import pytest

from aimg_app.api.generation import GenerationStatusSchema, ModelSchema
from aimg_app.api.workflows import WorkflowStateSchema, WorkflowTemplateSchema
from aimg_app.models.item import Item, VideoFrameEntry
from aimg_app.models.workflow import WorkflowState
from aimg_app.plugin_api import GenerationModel, TemplateParameter, WorkflowTemplate
from aimg_app.plugin_api.workflows import SampleImage, TemplateFile
from aimg_app.services.generation import status_of
from aimg_app.services.workflows import RunStatus

# object -> member -> contract type ("X[]" an array of X; a capitalised X another object)
CONTRACT = {
    "GenerationStatus": {
        "imageID": "string", "folderID": "string", "status": "string", "ignoredWords": "string", "mtype": "string",
        "url": "string", "queuePosition": "number", "frames": "VideoFrame[]",
    },
    "VideoFrame": {"frameCount": "number", "frameNumber": "number", "frameUrl": "string"},
    "ImageThumbnail": {"imageID": "string", "url": "string"},
    "Model": {
        "modelID": "string", "name": "string", "description": "string", "mediaType": "string", "minTier": "number",
        "tier0Concurrent": "number", "tier1Concurrent": "number", "tier2Concurrent": "number",
        "positiveTokens": "string[]", "negativeTokens": "string[]", "sampleImages": "ImageThumbnail[]",
        "minSteps": "number", "maxSteps": "number", "allowedWidths": "number[]", "allowedHeights": "number[]",
        "maxResolution": "number", "defaultResolution": "number[]", "allowedSamplers": "string[]",
        "defaultSampler": "string", "minCfgScale": "number", "maxCfgScale": "number", "supportsVariations": "boolean",
        "registrationWall": "boolean", "defaultFaceFix": "boolean", "wikiURL": "string",
    },
    "WorkflowTemplate": {
        "name": "string", "deployments": "string[]", "parameters": "WorkflowTemplateParameter[]",
        "workflowTemplateFiles": "object",
    },
    "WorkflowTemplateParameter": {
        "name": "string", "type": "string", "dataType": "string", "uiType": "string", "description": "string",
        "defaultValue": "string", "replaceFromString": "string", "extraData": "any", "isOptional": "boolean",
        "min": "string", "max": "string", "increment": "string", "optionName": "string", "isAlwaysVisible": "boolean",
        "isHidden": "boolean", "fileGroup": "string", "fileGroupDestination": "string", "dropdownItems": "string[]",
    },
    "WorkflowTemplateFile": {"fileNames": "string[]", "supportFileType": "string"},
    "WorkflowStateObject": {
        "_id": "string", "publicId": "string", "runParamaters": "RunParameters", "isStarted": "boolean",
        "isComplete": "boolean", "isError": "boolean", "errorMessage": "string",
        "outputFiles": "WorkflowOutputFileEntry[]", "log": "string[]", "workflowJsonString": "string",
        "state": "string", "startTime": "string", "endTime": "string", "api2userEmail": "string",
        "itemIds": "string[]",
    },
    # runParamaters.publicId is "usually null": it is checked apart.
    "RunParameters": {"workflowTemplateName": "string", "parameters": "WorkflowRunParameter[]"},
    "WorkflowRunParameter": {"name": "string", "value": "string"},
    "WorkflowOutputFileEntry": {
        "note": "string", "fileName": "string", "downloadURL": "string", "isMainOutput": "boolean",
        "height": "number", "width": "number", "type": "string",
    },
}
SCALARS = {"string": (str,), "number": (int, float), "boolean": (bool,), "object": (dict,)}


def check(kind: str, value, where: str) -> None:
    if kind == "any":
        return
    if kind.endswith("[]"):
        assert isinstance(value, list) and value, f"{where}: a non-empty array expected, got {value!r}"
        for i, entry in enumerate(value):
            check(kind[:-2], entry, f"{where}[{i}]")
        return
    if kind in CONTRACT:
        assert isinstance(value, dict), f"{where}: an object expected, got {value!r}"
        for member, member_kind in CONTRACT[kind].items():
            assert member in value, f"{where}: {member} is missing"
            check(member_kind, value[member], f"{where}.{member}")
        return
    ok = isinstance(value, SCALARS[kind]) and (kind != "number" or not isinstance(value, bool))
    assert ok, f"{where}: a {kind} expected, got {value!r}"


def wire(schema, obj) -> dict:
    """What the HTTP answer carries: the dump, through JSON."""
    return json.loads(json.dumps(schema.dump(obj)))


def full_item(mtype: str = "video") -> Item:
    return Item(id="item-1", user_id="u1", status="queued", mtype=mtype, ignored_words=["nude", "gore"],
                progress=0.25, folder_id="folder-1", url="/getFile?id=item-1.mp4",
                frames=[VideoFrameEntry(frame_count=2, frame_number=0, url="/f0"),
                        VideoFrameEntry(frame_count=2, frame_number=1, url="/f1")])


def full_state(state: str = "queued") -> WorkflowState:
    started = datetime.datetime(2024, 5, 1, 12, 0, 0)
    return WorkflowState(
        id="state-1", public_id="wf-1", template_name="txt2img", user_email="pro@example.com",
        run_parameters=[{"name": "Steps", "value": "20"}], graph_json="{}", state=state, log=["queued"],
        output_files=[{"note": "n", "fileName": "a.png", "downloadURL": "/getFile?id=a.png", "isMainOutput": True,
                       "height": 512, "width": 512, "type": "image/png", "fileId": "file-1"}],
        start_time=started, end_time=started + datetime.timedelta(seconds=9), item_ids=["item-1"], progress=0.5,
        error_message="ComfyUI failed", status_message="waiting for a generation server", folder_id="folder-1")


class FullModel(GenerationModel):
    identifier = "full"
    label = "Full"
    description = "Every member set."
    media_type = "StaticImage"
    workflow_template = "txt2img"
    positive_tokens = ("masterpiece",)
    negative_tokens = ("blurry",)
    sample_images = (SampleImage(image_id="s1", url="/getFile?id=s1.png"),)
    wiki_url = "https://wiki.example/full"


class FullTemplate(WorkflowTemplate):
    identifier = "full"
    label = "Full"
    description = "Every member set."

    def graph(self) -> dict:
        return {}

    def parameters(self):
        return [TemplateParameter(
            "Sampler", "dropdown", "{{SAMPLER}}", "Which sampler.", default_value="euler", is_optional=True,
            min="0", max="10", increment="1", option_name="sampler", file_group="samplers",
            file_group_destination="models/samplers", dropdown_items=("euler", "dpm"), ui_type="select",
            type="enum", extra_data={"randomIfEmpty": False})]

    def files(self):
        return {"model": TemplateFile(file_names=("a.safetensors",), support_file_type="checkpoint")}


def test_generation_status_has_every_contract_member():
    status = status_of(full_item(), full_state(), position=3, eta=12.5)
    body = wire(GenerationStatusSchema(), status)
    check("GenerationStatus", body, "GenerationStatus")
    assert body["ignoredWords"] == "nude, gore"
    # The additions, and the same answer from the JSON an idempotent repeat or an event stores.
    assert body["progress"] == 0.25 and body["estimatedSecondsRemaining"] == 12.5
    assert body["statusMessage"] == "waiting for a generation server"
    assert wire(GenerationStatusSchema(), json.loads(json.dumps(asdict(status)))) == body


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_generation_status_says_why_it_ended(status):
    item = full_item()
    item.status, item.error_message = status, "ComfyUI failed"
    body = wire(GenerationStatusSchema(), status_of(item, full_state(), position=3, eta=1.0))
    assert body["errorMessage"] == "ComfyUI failed"
    # Only a queued Item has a place in the queue; only an open one a message or an ETA.
    assert not {"queuePosition", "statusMessage", "estimatedSecondsRemaining"} & set(body)


def test_model_has_every_contract_member():
    body = wire(ModelSchema(), FullModel({}))
    check("Model", body, "Model")
    assert body["modelID"] == "full" and body["name"] == "Full"


def test_workflow_template_has_every_contract_member():
    body = wire(WorkflowTemplateSchema(), FullTemplate({}))
    check("WorkflowTemplate", body, "WorkflowTemplate")
    for name, entry in body["workflowTemplateFiles"].items():
        check("WorkflowTemplateFile", entry, f"workflowTemplateFiles.{name}")


@pytest.mark.parametrize("state", ["queued", "error"])
def test_workflow_state_has_every_contract_member(state):
    body = wire(WorkflowStateSchema(), RunStatus(full_state(state), position=2, eta=30.0))
    check("WorkflowStateObject", body, "WorkflowStateObject")
    assert "publicId" in body["runParamaters"] and body["runParamaters"]["publicId"] is None
    assert "fileId" not in body["outputFiles"][0]  # the file store's id stays inside
    assert body["queuePosition"] == 2 and body["estimatedSecondsRemaining"] == 30.0
    assert ("statusMessage" in body) == (state == "queued")


def test_unset_optional_members_are_absent_not_null():
    item = Item(id="item-2", user_id="u1", status="completed", mtype="image", ignored_words=[], progress=1.0)
    body = wire(GenerationStatusSchema(), status_of(item, None))
    assert set(body) == {"imageID", "status", "ignoredWords", "mtype", "progress"}
    state = WorkflowState(id="s2", public_id="wf-2", template_name="t", state="running", item_ids=["i"])
    body = wire(WorkflowStateSchema(), RunStatus(state))
    assert body["startTime"] is None and body["endTime"] is None  # mandatory, so null until known
    assert not {"errorMessage", "api2userEmail", "queuePosition", "estimatedSecondsRemaining"} & set(body)
