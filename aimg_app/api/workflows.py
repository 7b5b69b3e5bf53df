"""The contract's API2: Workflows chapter (``/2/...``), for users whose PRO tier is above 0."""
from __future__ import annotations

from flask import request
from marshmallow import Schema, ValidationError, fields, validate

from .. import context
from ..models.base import iso
from ..envelope import ok
from ..errors import BadRequest
from ..services import catalogue, idempotency
from ..services import workflows as workflows_service
from .base import Blueprint, ContractSchema, envelope, success_schema
from .fields import IdList, derived
from .generation import IDEMPOTENCY_HEADER

blp = Blueprint("workflows", __name__, url_prefix="/2", description="API2: Workflows (PRO tier above 0).")


def _api2_user():
    context.require_session_header()
    user = context.current_user()
    workflows_service.require_api2(user)
    return user


class ScalarField(fields.Raw):
    """A string, number or boolean (a WorkflowRunParameter value; stringified when stored)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, (str, int, float, bool)):
            raise ValidationError("Must be a string, number or boolean.")
        if isinstance(value, str) and len(value) > 100_000:
            raise ValidationError("Must be at most 100000 characters.")
        return value


class WorkflowRunParameterSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    value = ScalarField(required=True, metadata={"description": "The value; always stringified when stored."})


class WorkflowRunParameterOut(Schema):
    name = fields.String(required=True)
    value = fields.String(required=True)


class TemplateParameterSchema(ContractSchema):
    """Dumps a ``plugin_api.TemplateParameter`` (its optional members only when set)."""

    name = fields.String(required=True)
    type = fields.String()
    dataType = fields.String(required=True, attribute="data_type")
    uiType = fields.String(attribute="ui_type")
    description = fields.String(required=True)
    defaultValue = fields.String(required=True, attribute="default_value")
    userValue = fields.String(attribute="user_value")  # never set by a template
    replaceFromString = fields.String(required=True, attribute="replace_from_string")
    extraData = fields.Raw(attribute="extra_data")
    isOptional = fields.Boolean(required=True, attribute="is_optional")
    min = fields.String()
    max = fields.String()
    increment = fields.String()
    optionName = fields.String(required=True, attribute="option_name")
    isAlwaysVisible = fields.Boolean(required=True, attribute="is_always_visible")
    isHidden = fields.Boolean(required=True, attribute="is_hidden")
    fileGroup = fields.String(attribute="file_group")
    fileGroupDestination = fields.String(attribute="file_group_destination")
    dropdownItems = derived(fields.List, lambda p: list(p.dropdown_items) or None, fields.String())


class TemplateFileSchema(ContractSchema):
    fileNames = fields.List(fields.String(), required=True, attribute="file_names")
    supportFileType = fields.String(required=True, attribute="support_file_type")


class WorkflowTemplateSchema(ContractSchema):
    """Dumps a ``plugin_api.WorkflowTemplate``."""

    name = fields.String(required=True, attribute="identifier")
    label = fields.String()
    description = fields.String()
    deployments = fields.List(fields.String(), required=True)
    parameters = derived(fields.List, lambda t: t.parameters(), fields.Nested(TemplateParameterSchema), required=True)
    workflowTemplateFiles = derived(fields.Dict, lambda t: t.files(), values=fields.Nested(TemplateFileSchema),
                                     required=True, metadata={
                                         "description": "name -> {fileNames: string[], supportFileType: string}"})


class TemplateNamesArgs(Schema):
    workflowTemplateNames = IdList()


@blp.route("/getAggregatedWorkflowTemplates", methods=["GET"])
@blp.arguments(TemplateNamesArgs, location="query")
@blp.response(200, envelope("WorkflowTemplatesResponse", fields.List(fields.Nested(WorkflowTemplateSchema))))
def get_aggregated_workflow_templates(args):
    """Every workflow template (or the named ones)."""
    _api2_user()
    names = args.get("workflowTemplateNames") or None
    templates = context.resources().workflow_templates
    return ok([t for name, t in templates.items() if names is None or name in names])


class FileGroupArgs(Schema):
    fileGroup = fields.String(required=True, validate=validate.Length(min=1, max=200))


@blp.route("/getFileGroupItems", methods=["GET"])
@blp.arguments(FileGroupArgs, location="query")
@blp.response(200, success_schema("FileGroupItemsResponse", fileNames=fields.List(fields.String(), required=True)))
def get_file_group_items(args):
    """The file names of a file group declared by the workflow templates."""
    _api2_user()
    return ok({"fileNames": catalogue.file_group_items(context.resources(), args["fileGroup"])})


OutputFileSchema = Schema.from_dict({
    "note": fields.String(), "fileName": fields.String(), "downloadURL": fields.String(),
    "isMainOutput": fields.Boolean(required=True), "height": fields.Integer(required=True),
    "width": fields.Integer(required=True), "type": fields.String(),
}, name="WorkflowOutputFileEntry")

class WorkflowRunParametersSchema(ContractSchema):
    """Dumps a ``WorkflowState`` (its run parameters)."""

    publicId = derived(fields.String, lambda state: None, allow_none=True)
    workflowTemplateName = fields.String(attribute="template_name")
    parameters = fields.List(fields.Nested(WorkflowRunParameterOut), attribute="run_parameters")


# A cancelled run reads as "error" (the contract knows no other end).
_STATE_NAMES = {"queued": "queued", "running": "running", "completed": "completed", "error": "error",
                "cancelled": "error"}


def _open_run(run) -> bool:
    return run.state.state in ("queued", "running")


WorkflowStateSchema = ContractSchema.from_dict({
    "_id": fields.String(required=True, attribute="state.id"), "publicId": fields.String(attribute="state.public_id"),
    "runParamaters": derived(fields.Nested, lambda run: run.state, WorkflowRunParametersSchema),
    "isStarted": fields.Boolean(required=True, attribute="state.is_started"),
    "isComplete": fields.Boolean(required=True, attribute="state.is_complete"),
    "isError": fields.Boolean(required=True, attribute="state.is_error"),
    "errorMessage": derived(fields.String, lambda run: run.state.error_message or None),
    "outputFiles": fields.List(fields.Nested(OutputFileSchema), attribute="state.output_files"),
    # In time order: lines come from the API and from a worker that folds some into its next
    # write, so they are stored out of order; each begins with its time (ISO, milliseconds).
    # Sorted by that time alone: lines of the same millisecond keep the order they were written in.
    "log": derived(fields.List, lambda run: sorted(run.state.log or [], key=lambda line: line.split(" ", 1)[0]),
                   fields.String()),
    "workflowJsonString": fields.String(attribute="state.graph_json"),
    "state": derived(fields.String, lambda run: _STATE_NAMES.get(run.state.state, run.state.state),
                      metadata={"description": "queued, running, completed or error"}),
    "startTime": derived(fields.String, lambda run: iso(run.state.start_time), required=True, allow_none=True),
    "endTime": derived(fields.String, lambda run: iso(run.state.end_time), required=True, allow_none=True),
    "api2userEmail": derived(fields.String, lambda run: run.state.user_email or None),
    "itemIds": fields.List(fields.String(), required=True, attribute="state.item_ids"),
    "progress": derived(fields.Float, lambda run: round(float(run.state.progress or 0.0), 4)),
    "queuePosition": fields.Integer(attribute="position"),
    "statusMessage": derived(fields.String, lambda run: (run.state.status_message or None) if _open_run(run) else None,
                              metadata={"description": "Why a run is not generating yet (an addition)."}),
    "estimatedSecondsRemaining": fields.Float(attribute="eta", metadata={
        "description": "Seconds until the run is likely done, from measured service times (an addition)."}),
}, name="WorkflowStateObject")


class StateOrList(fields.Field):
    """A WorkflowStateObject, or a list of them (when ``workflowIds`` was used)."""

    def _serialize(self, value, attr, obj, **kwargs):
        schema = WorkflowStateSchema()
        return schema.dump(value, many=isinstance(value, list))


class WorkflowStatusArgs(Schema):
    workflowId = fields.String(validate=validate.Length(min=1, max=128))
    workflowIds = IdList()


@blp.route("/getWorkflowStatus", methods=["GET"])
@blp.arguments(WorkflowStatusArgs, location="query")
@blp.response(200, envelope("WorkflowStatusResponse", StateOrList(metadata={
    "description": "A WorkflowStateObject, or an array of them when workflowIds is given."})))
def get_workflow_status(args):
    """The state of one Workflow (workflowId) or of several (workflowIds, comma-separated)."""
    user = _api2_user()
    many = args.get("workflowIds") or []
    if not args.get("workflowId") and not many:
        raise BadRequest("Give workflowId or workflowIds.")
    if len(many) > 100:
        raise BadRequest("workflowIds may name at most 100 workflows.")
    ids = ([args["workflowId"]] if args.get("workflowId") else []) + many
    states = workflows_service.find_states(ids, user.id, is_admin=context.admin_name() is not None)
    objects = workflows_service.run_statuses(context.resources(), states)
    return ok(objects if many else objects[0])


class EnqueueWorkflowSchema(Schema):
    prompt = fields.String(validate=validate.Length(max=4000))
    negprompt = fields.String(validate=validate.Length(max=4000))
    seed = fields.Integer(validate=validate.Range(min=0, max=2**64 - 1))
    subseed = fields.Integer()
    subseed_strength = fields.Float()
    steps = fields.Integer()
    cfgscale = fields.Float()
    modelName = fields.String(validate=validate.Length(min=1, max=200))
    lora = fields.List(fields.String(validate=validate.Length(min=1, max=200)), validate=validate.Length(max=8))
    lora_strength = fields.List(fields.Float(), validate=validate.Length(max=8))
    height = fields.Integer()
    width = fields.Integer()
    batchSize = fields.Integer(validate=validate.Range(min=1, max=64))
    workflowTemplateName = fields.String(required=True, validate=validate.Length(min=1, max=200))
    parameters = fields.List(fields.Nested(WorkflowRunParameterSchema), validate=validate.Length(max=200))
    folderID = fields.String(validate=validate.Length(min=1, max=128))


@blp.route("/enqueueWorkflow", methods=["POST"])
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
@blp.arguments(EnqueueWorkflowSchema)
@blp.response(200, success_schema("EnqueueWorkflowResponse", itemIds=fields.List(fields.String(), required=True),
                                  workflowId=fields.String(required=True)))
def enqueue_workflow(body):
    """Queue a run of a workflow template; answers its workflowId and itemIds."""
    user = _api2_user()
    domain = context.domain().identifier
    resources = context.resources()
    return ok(idempotency.run_once(
        resources.redis, scope=f"{domain}:{user.id}:enqueueWorkflow", key=request.headers.get("Idempotency-Key"),
        request=body, work=lambda: workflows_service.enqueue_workflow(resources, user, domain, body)))
