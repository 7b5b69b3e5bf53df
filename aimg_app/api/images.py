"""The contract's Image Management chapter: Items, reactions, approval, deletion, reports."""
from __future__ import annotations

from flask import Response
from marshmallow import Schema, fields, validate

from .. import context
from ..envelope import ok
from ..errors import BadRequest, Forbidden, NotFound
from ..models import User
from ..services import approval as approval_service
from ..services import items as items_service
from ..services import library, tiers
from ..services import migration as migration_service
from ..services import reactions as reactions_service
from ..services import reports as reports_service
from .base import Blueprint, ContractSchema, PaginationArgsSchema, admin_only, envelope, success_schema
from .fields import EpochMs, IdList, Timestamp, derived

blp = Blueprint("images", __name__, url_prefix="/", description="Image Management.")

MTYPE = fields.String(validate=validate.OneOf(["image", "video"]))
APPROVAL = fields.String(validate=validate.OneOf(["none", "pending", "approved", "rejected"]))


def _reaction(kind: str):
    return lambda shown: shown.reaction == kind if shown.reacted else None


class _ShownItemSchema(ContractSchema):
    """What the Image and ImageInfo objects share, read from a ``library.ShownItem``."""

    id = fields.String(required=True, attribute="item.id")
    userID = fields.String(attribute="item.user_id")
    batchID = derived(fields.String, lambda s: s.item.batch_id if s.private else None)
    url = derived(fields.String, lambda s: s.item.url or "", required=True)
    viewCount = fields.Integer(attribute="item.view_count")
    likeCount = fields.Integer(attribute="item.like_count")
    dislikeCount = fields.Integer(attribute="item.dislike_count")
    completedDate = EpochMs(attribute="item.completed_date", metadata={"description": "UNIX epoch in milliseconds."})
    completedTimestamp = derived(Timestamp, lambda s: s.item.completed_date)
    mtype = fields.String(required=True, attribute="item.mtype")
    tags = fields.List(fields.String(), attribute="item.tags")
    isLiked = derived(fields.Boolean, _reaction("like"))
    isDisliked = derived(fields.Boolean, _reaction("dislike"))
    isPublic = fields.Boolean(required=True, attribute="item.is_public")
    isPubliclyVisible = derived(fields.Boolean, lambda s: None if s.sample else bool(s.item.is_publicly_visible))
    publicApprovalStatus = derived(fields.String, lambda s: s.item.public_approval_status if s.private else None)
    folderID = derived(fields.String, lambda s: s.item.folder_id if s.folder_shown else None)


class ImageSchema(_ShownItemSchema):
    mediaType = derived(fields.String, lambda s: s.item.media_type or "Unknown", required=True)
    folderAddedDate = derived(EpochMs, lambda s: s.item.folder_added_date if s.folder_shown else None)
    folderAddedTimestamp = derived(Timestamp, lambda s: s.item.folder_added_date if s.folder_shown else None)


class ImageInfoSchema(_ShownItemSchema):
    viewCount = fields.Integer(required=True, attribute="item.view_count")
    likeCount = fields.Integer(required=True, attribute="item.like_count")
    dislikeCount = fields.Integer(required=True, attribute="item.dislike_count")
    username = fields.String(attribute="owner.username")
    profilePicture = fields.String(attribute="picture")
    prompt = derived(fields.String, lambda s: s.item.prompt or "", required=True)
    negprompt = fields.String(attribute="item.negprompt")
    generatorVersion = derived(fields.String, lambda s: s.item.generator_version or "1", required=True)
    workflowTemplateName = derived(fields.String, lambda s: (s.item.workflow_template_name
                                                             if s.item.generator_version == "2" else None))
    workflowRunParameters = derived(fields.List, lambda s: (list(s.item.workflow_run_parameters)
                                                            if s.item.generator_version == "2" else None),
                                    fields.Dict())
    modelName = derived(fields.String, lambda s: s.item.model_name or s.item.model_id or "", required=True)
    modelID = derived(fields.String, lambda s: s.item.model_id or "", required=True)
    steps = derived(fields.Integer, lambda s: s.item.steps or 0, required=True)
    seed = derived(fields.Integer, lambda s: s.item.seed if s.item.seed is not None else 0, required=True)
    subseed = derived(fields.Integer, lambda s: s.item.subseed or 0, required=True)
    subseed_strength = derived(fields.Float, lambda s: s.item.subseed_strength or 0.0, required=True)
    lora = fields.List(fields.String(), required=True, attribute="item.lora")
    lora_strength = fields.List(fields.Float(), required=True, attribute="item.lora_strength")
    sampler = derived(fields.String, lambda s: s.item.sampler or "", required=True)
    cfgscale = derived(fields.Float, lambda s: s.item.cfgscale if s.item.cfgscale is not None else 0, required=True)
    restoreFaces = derived(fields.Boolean, lambda s: bool(s.item.restore_faces), required=True)
    height = derived(fields.Integer, lambda s: s.item.height or 0, required=True)
    width = derived(fields.Integer, lambda s: s.item.width or 0, required=True)


class ResultSchema(Schema):
    id = fields.String(required=True)
    success = fields.Boolean(required=True)
    message = fields.String()


class ReportResultSchema(ResultSchema):
    reportId = fields.String(allow_none=True)


ImageResponse = envelope("ImageResponse", fields.Nested(ImageSchema))
ImageListResponse = envelope("ImageListResponse", fields.List(fields.Nested(ImageSchema)), paginated=True)
ImageInfoResponse = envelope("ImageInfoResponse", fields.Nested(ImageInfoSchema))
ImageInfoListResponse = envelope("ImageInfoListResponse", fields.List(fields.Nested(ImageInfoSchema)))
ResultListResponse = envelope("ResultListResponse", fields.List(fields.Nested(ResultSchema)))


def viewer(user: User | None = None) -> library.Viewer:
    if user is None:
        user = context.current_user(required=False)
    return library.Viewer(user.id if user else None, context.admin_name() is not None, context.domain().identifier)


def results(pairs) -> list[dict]:
    return [{"id": i, "success": s} | ({"message": m} if m else {}) for i, s, m in pairs]


# --- one Item ---------------------------------------------------------------------------------


class ImageIdArgs(Schema):
    imageID = fields.String(required=True, validate=validate.Length(min=1, max=128))


@blp.route("/getItem", methods=["GET"])
@blp.arguments(ImageIdArgs, location="query")
@blp.response(200, ImageResponse)
def get_item(args):
    """Basic information about an Item (the caller's, or a public one)."""
    context.require_session_header()
    return ok(library.get_item(args["imageID"], viewer()))


def _picture_of(owner):
    from ..services import profile_pictures

    if getattr(owner, "profile_picture_banned", False):
        return None
    try:
        return profile_pictures.picture_data_uri(context.resources(), owner)
    except Exception:  # a preview must not fail the Item's details
        return None


@blp.route("/getItemDetails", methods=["GET"])
@blp.arguments(ImageIdArgs, location="query")
@blp.response(200, ImageInfoResponse)
def get_item_details(args):
    """Detailed information about an Item; a view by another user counts in viewCount."""
    context.require_session_header()
    return ok(library.get_item_details(args["imageID"], viewer(), _picture_of))


class MtypeArgs(Schema):
    mtype = MTYPE


@blp.route("/getLastCompletedItem", methods=["GET"])
@blp.arguments(MtypeArgs, location="query")
@blp.response(200, ImageResponse)
def get_last_completed_item(args):
    """The caller's most recently completed Item (404 when there is none)."""
    user = context.current_user()
    return ok(library.last_completed_item(viewer(user), args.get("mtype")))


# --- lists --------------------------------------------------------------------------------------


class MyCreationsArgs(PaginationArgsSchema):
    mtype = MTYPE
    folderID = fields.String(validate=validate.Length(min=1, max=128))
    isPublic = fields.Boolean()
    publicApprovalStatus = APPROVAL


@blp.route("/getMyCreations", methods=["GET"])
@blp.arguments(MyCreationsArgs, location="query")
@blp.response(200, ImageListResponse)
def get_my_creations(args):
    """The caller's completed Items, newest first (reference: completedDate)."""
    user = context.current_user()
    payload, metadata = library.my_creations(user, viewer(user), args, context.resources().settings)
    return ok(payload, metadata)


class PublicCreationsArgs(PaginationArgsSchema):
    userID = fields.String(validate=validate.Length(min=1, max=128))
    mtype = MTYPE
    folderID = fields.String(validate=validate.Length(min=1, max=128))


@blp.route("/getPublicCreations", methods=["GET"])
@blp.arguments(PublicCreationsArgs, location="query")
@blp.response(200, ImageListResponse)
def get_public_creations(args):
    """Publicly visible Items (public and in a public folder), newest first."""
    context.require_session_header()
    payload, metadata = library.public_creations(viewer(), args)
    return ok(payload, metadata)


class BatchArgs(Schema):
    batchID = fields.String(required=True, validate=validate.Length(min=1, max=128))


@blp.route("/getBatchItems", methods=["GET"])
@blp.arguments(BatchArgs, location="query")
@blp.response(200, ImageInfoListResponse)
def get_batch_items(args):
    """The caller's completed Items of one generation batch."""
    user = context.current_user()
    return ok(library.batch_items(viewer(user), args["batchID"]))


class SampleArgs(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


@blp.route("/getSampleItems", methods=["GET"])
@blp.arguments(SampleArgs, location="query")
@blp.response(200, envelope("SampleItemsResponse", fields.List(fields.Nested(ImageSchema))))
def get_sample_items(args):
    """A random sample of publicly visible Items (reduced view)."""
    context.require_session_header()
    return ok(library.sample_items(viewer(), args["limit"]))


@blp.route("/getLatestItems", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, ImageListResponse)
def get_latest_items(args):
    """The latest publicly visible Items (reduced view), newest first."""
    context.require_session_header()
    payload, metadata = library.latest_items(viewer(), args)
    return ok(payload, metadata)


class ItemsArgs(MyCreationsArgs):
    userID = fields.String(validate=validate.Length(min=1, max=128))


@blp.route("/getItems", methods=["GET"])
@admin_only
@blp.arguments(ItemsArgs, location="query")
@blp.response(200, ImageListResponse)
def get_items(args):
    """Admins: every completed Item of the domain, with filters."""
    context.require_admin()
    payload, metadata = library.admin_items(viewer(), args)
    return ok(payload, metadata)


# --- deletion -------------------------------------------------------------------------------------


class DeleteArgs(Schema):
    imageIDs = IdList()
    userID = fields.String(validate=validate.Length(min=1, max=128))


@blp.route("/deleteItems", methods=["DELETE"])
@blp.arguments(DeleteArgs, location="query")
@blp.response(200, ResultListResponse)
def delete_items(args):
    """Soft-delete Items (restorable), or every Item of a user (PRO tier > 2, or admins). An Item
    that does not exist, is not the caller's, is protected or is already deleted is left as it is
    (``success`` false, with the reason)."""
    admin = context.admin_name()
    user = context.current_user(required=admin is None)
    if args.get("userID"):
        target = args["userID"]
        if admin is None:
            if target != user.id:
                raise Forbidden("You can only delete your own Items.")
            if tiers.tier_of(user) <= 2:
                raise Forbidden("Deleting all Items requires a PRO tier above 2.")
        elif User.objects(id=target).count() == 0:
            raise NotFound("User not found.")
        return ok(results(items_service.delete_items_of_user(target)))
    ids = library.check_ids(args.get("imageIDs") or [], limit=items_service.MAX_BULK_IDS) if args.get(
        "imageIDs") is not None else None
    if not ids:
        raise BadRequest("At least one of imageIDs or userID must be provided.")
    owner = None if admin else user.id
    touched = items_service.Touched()
    out = [(i, *items_service.delete_item(i, owner_id=owner, touched=touched)) for i in ids]
    touched.flush()
    return ok(results(out))


class RestoreSchema(Schema):
    imageIDs = IdList()
    userID = fields.String(validate=validate.Length(min=1, max=128))


@blp.route("/restoreItems", methods=["POST"])
@admin_only
@blp.arguments(RestoreSchema)
@blp.response(200, ResultListResponse)
def restore_items(body):
    """Admins: restore deleted Items to their owner's root folder (not when the owner is
    disabled); tags are not restored."""
    context.require_admin()
    if body.get("userID"):
        return ok(results(items_service.restore_all_items_of_user(body["userID"])))
    ids = body.get("imageIDs")
    if not ids:
        raise BadRequest("At least one of imageIDs or userID must be provided.")
    ids = library.check_ids(ids)
    return ok(results((i, *items_service.restore_item(i)) for i in ids))


# --- reactions ------------------------------------------------------------------------------------


class ImageIdsSchema(Schema):
    imageIDs = IdList(required=True)


def _react(body, fn, kind):
    user = context.current_user()
    ids = library.check_ids(body["imageIDs"])
    v = viewer(user)
    return ok(results((i, *fn(v, i, kind)) for i in ids))


@blp.route("/likeItems", methods=["POST"])
@blp.arguments(ImageIdsSchema)
@blp.response(200, ResultListResponse)
def like_items(body):
    """Like Items (removes the caller's dislike of them)."""
    return _react(body, reactions_service.react, "like")


@blp.route("/unlikeItems", methods=["POST"])
@blp.arguments(ImageIdsSchema)
@blp.response(200, ResultListResponse)
def unlike_items(body):
    """Remove the caller's like of Items."""
    return _react(body, reactions_service.unreact, "like")


@blp.route("/dislikeItems", methods=["POST"])
@blp.arguments(ImageIdsSchema)
@blp.response(200, ResultListResponse)
def dislike_items(body):
    """Dislike Items (removes the caller's like of them)."""
    return _react(body, reactions_service.react, "dislike")


@blp.route("/undislikeItems", methods=["POST"])
@blp.arguments(ImageIdsSchema)
@blp.response(200, ResultListResponse)
def undislike_items(body):
    """Remove the caller's dislike of Items."""
    return _react(body, reactions_service.unreact, "dislike")


# --- approval and protection ------------------------------------------------------------------------


class ItemPropertiesSchema(Schema):
    imageID = fields.String(required=True, validate=validate.Length(min=1, max=128))
    isPublic = fields.Boolean()
    publicApprovalStatus = fields.String(validate=validate.OneOf(["none", "pending", "approved", "rejected"]))


@blp.route("/setItemProperties", methods=["POST"])
@blp.arguments(ItemPropertiesSchema)
@blp.response(200, ImageResponse)
def set_item_properties(body):
    """The owner requests (or withdraws) public approval, or toggles isPublic once approved."""
    user = context.current_user()
    return ok(approval_service.set_item_properties(user, viewer(user), body["imageID"], body.get("isPublic"),
                                                   body.get("publicApprovalStatus")))


class ApprovalSchema(Schema):
    imageIDs = IdList(required=True)
    publicApprovalStatus = fields.String(required=True, validate=validate.OneOf(["approved", "rejected"]))


@blp.route("/setPublicApprovalStatus", methods=["POST"])
@admin_only
@blp.arguments(ApprovalSchema)
@blp.response(200, ResultListResponse)
def set_public_approval_status(body):
    """Admins: approve (and make public) or reject (and make private) Items."""
    admin = context.require_admin()
    ids = library.check_ids(body["imageIDs"])
    status = body["publicApprovalStatus"]
    return ok(results((i, *approval_service.set_public_approval_status(i, status, admin)) for i in ids))


@blp.route("/setProtected", methods=["POST"])
@admin_only
@blp.arguments(ImageIdsSchema)
@blp.response(200, ResultListResponse)
def set_protected(body):
    """Admins: toggle whether Items are protected (protected Items cannot be deleted or reported)."""
    context.require_admin()
    ids = library.check_ids(body["imageIDs"])
    return ok(results((i, *items_service.set_protected_toggle(i)) for i in ids))


class MigrateSchema(Schema):
    sourceUserID = fields.String(required=True, validate=validate.Length(min=1, max=128))
    destinationUserID = fields.String(required=True, validate=validate.Length(min=1, max=128))


@blp.route("/migrateLibrary", methods=["POST"])
@admin_only
@blp.arguments(MigrateSchema)
@blp.response(200, success_schema("MigrateLibraryResponse", success=fields.Boolean(required=True),
                                  message=fields.String()))
def migrate_library(body):
    """Admins: move a user's non-deleted Items and Folders to another user."""
    context.require_admin()
    return ok(migration_service.migrate_library(body["sourceUserID"], body["destinationUserID"]))


# --- reports ------------------------------------------------------------------------------------------


class ReportItemsSchema(Schema):
    itemIds = IdList(required=True)
    reportQueue = fields.String(validate=validate.Length(min=1, max=100))
    additionalInformation = fields.String(validate=validate.Length(max=5000))


@blp.route("/reportItems", methods=["POST"])
@blp.arguments(ReportItemsSchema)
@blp.response(200, envelope("ReportItemsResponse", fields.List(fields.Nested(ReportResultSchema))))
def report_items(body):
    """Report Items for review by admins. No effect on an Item that does not exist or is
    deleted, is protected, is the reporter's own, or already has the reporter's pending report."""
    user = context.current_user()
    ids = library.check_ids(body["itemIds"], "itemIds")
    queue = reports_service.user_queue(context.resources().report_queues, body.get("reportQueue"))
    out = []
    for item_id in ids:
        success, report_id, message = reports_service.report_item(viewer(user), user, item_id, queue,
                                                                  body.get("additionalInformation"))
        out.append({"id": item_id, "reportId": report_id, "success": success} | ({"message": message} if message else {}))
    return ok(out)


class ItemMetadataSchema(Schema):
    rawPositivePrompt = fields.String()
    filteredPositivePrompt = fields.String()
    rawNegativePrompt = fields.String()
    filteredNegativePrompt = fields.String()
    workflowUsed = fields.String()
    modelId = fields.String()
    url = fields.String()


class AuthorMetadataSchema(Schema):
    userId = fields.String()
    userEmail = fields.String()
    username = fields.String()
    flaggedItemsCount = fields.Integer()
    abuse = fields.Integer()
    isDisabled = fields.Boolean()


class ItemReportSchema(Schema):
    itemId = fields.String(required=True)
    reporterId = fields.String()
    reportId = fields.String(required=True)
    reportedDate = fields.String(required=True)
    reportStatus = fields.String(required=True)
    reportQueues = fields.List(fields.String(), required=True)
    reportAdditionalInformation = fields.String()
    approvalAdditionalInformation = fields.String()
    reportProcessedDate = fields.String()
    approverId = fields.String()
    downloadCount = fields.Integer(required=True)
    downloadLastDate = fields.String()
    itemMetadata = fields.Nested(ItemMetadataSchema)
    authorMetadata = fields.Nested(AuthorMetadataSchema)


class GetReportsArgs(PaginationArgsSchema):
    reportIds = IdList()
    reportStatus = IdList()
    reportQueues = IdList()
    createdAfter = fields.DateTime()
    createdBefore = fields.DateTime()
    authorId = fields.String(validate=validate.Length(min=1, max=128))


@blp.route("/getReports", methods=["GET"])
@admin_only
@blp.arguments(GetReportsArgs, location="query")
@blp.response(200, envelope("ReportsResponse", fields.List(fields.Nested(ItemReportSchema)), paginated=True))
def get_reports(args):
    """Admins: reports matching the filters (dates inclusive), newest first."""
    context.require_admin()
    payload, metadata = reports_service.list_reports(context.domain().identifier, args)
    return ok(payload, metadata)


class CloseReportsSchema(Schema):
    reportIds = IdList(required=True)
    reportStatus = fields.String(required=True, validate=validate.OneOf(["accepted", "declined"]))
    additionalInformation = fields.String(validate=validate.Length(max=5000))
    closeRelatedReports = fields.Boolean(load_default=False)


@blp.route("/closeReports", methods=["POST"])
@admin_only
@blp.arguments(CloseReportsSchema)
@blp.response(200, ResultListResponse)
def close_reports(body):
    """Admins: accept (the Items are deleted) or decline reports."""
    admin = context.require_admin()
    ids = library.check_ids(body["reportIds"], "reportIds")
    return ok(results(reports_service.close_reports(ids, body["reportStatus"], admin, body.get("additionalInformation"),
                                                    body["closeRelatedReports"])))


@blp.route("/getReportQueues", methods=["GET"])
@blp.response(200, envelope("ReportQueuesResponse", fields.List(fields.String())))
def get_report_queues():
    """The report queues users may choose; admins also get the system queues."""
    context.require_session_header()
    queues = context.resources().report_queues
    return ok(reports_service.queue_names(queues, include_system=context.admin_name() is not None))


class DownloadReportsArgs(Schema):
    reportIds = IdList(required=True)


@blp.route("/downloadReportsForEpoch", methods=["GET"])
@admin_only
@blp.arguments(DownloadReportsArgs, location="query")
def download_reports_for_epoch(args):
    """Admins: the reports as a CSV file for Epoch's compliance review (counts the download)."""
    context.require_admin()
    ids = library.check_ids(args["reportIds"], "reportIds")
    body = reports_service.epoch_csv(ids)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="reports-for-epoch.csv"',
        "X-Content-Type-Options": "nosniff",
    })
