"""The contract's API2: Workflows chapter (``/2/...``), for users whose PRO tier is above 0."""
from __future__ import annotations

from flask import request
from marshmallow import Schema, ValidationError, fields, validate

from .. import context, queueing
from ..envelope import ok
from ..errors import BadRequest
from ..services import catalogue, eta, idempotency
from ..services import workflows as workflows_service
from .base import Blueprint, envelope, success_schema
from .fields import IdList
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


class TemplateParameterSchema(Schema):
    name = fields.String(required=True)
    type = fields.String()
    dataType = fields.String(required=True)
    uiType = fields.String()
    description = fields.String(required=True)
    defaultValue = fields.String(required=True)
    userValue = fields.String()
    replaceFromString = fields.String(required=True)
    extraData = fields.Raw()
    isOptional = fields.Boolean(required=True)
    min = fields.String()
    max = fields.String()
    increment = fields.String()
    optionName = fields.String(required=True)
    isAlwaysVisible = fields.Boolean(required=True)
    isHidden = fields.Boolean(required=True)
    fileGroup = fields.String()
    fileGroupDestination = fields.String()
    dropdownItems = fields.List(fields.String())


class WorkflowTemplateSchema(Schema):
    name = fields.String(required=True)
    label = fields.String()
    description = fields.String()
    deployments = fields.List(fields.String(), required=True)
    parameters = fields.List(fields.Nested(TemplateParameterSchema), required=True)
    workflowTemplateFiles = fields.Dict(required=True, metadata={
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
    return ok([catalogue.template_object(t) for name, t in templates.items() if names is None or name in names])


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

RunParametersSchema = Schema.from_dict({
    "publicId": fields.String(allow_none=True), "workflowTemplateName": fields.String(),
    "parameters": fields.List(fields.Nested(WorkflowRunParameterOut)),
}, name="WorkflowRunParameters")

WorkflowStateSchema = Schema.from_dict({
    "_id": fields.String(required=True), "publicId": fields.String(),
    "runParamaters": fields.Nested(RunParametersSchema),
    "isStarted": fields.Boolean(required=True), "isComplete": fields.Boolean(required=True),
    "isError": fields.Boolean(required=True), "errorMessage": fields.String(),
    "outputFiles": fields.List(fields.Nested(OutputFileSchema)), "log": fields.List(fields.String()),
    "workflowJsonString": fields.String(),
    "state": fields.String(metadata={"description": "queued, running, completed or error"}),
    "startTime": fields.String(required=True, allow_none=True), "endTime": fields.String(required=True, allow_none=True),
    "api2userEmail": fields.String(), "itemIds": fields.List(fields.String(), required=True),
    "progress": fields.Float(), "queuePosition": fields.Integer(),
    "statusMessage": fields.String(metadata={"description": "Why a run is not generating yet (an addition)."}),
    "estimatedSecondsRemaining": fields.Float(metadata={
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
    resources = context.resources()
    objects = []
    for s in states:
        position = queueing.position(resources.redis, s.queue_name, s.id) if s.state == "queued" else None
        objects.append(workflows_service.state_object(s, position, eta.seconds_remaining(resources, s, position)))
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
