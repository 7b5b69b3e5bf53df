"""Reports of Items and the report queues that categorise them.

Queues come from report-queue plugins: user queues are what ``reportItems`` accepts;
system queues open reports themselves (``review_item``, called when an Item completes).
At most one pending report exists per (Item, reporter) — a partial unique index, so two
parallel requests cannot both open one. Accepting a report deletes its Item (unless it is
protected) and flags it once in its author's ``flagged_images_count``.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from typing import Any, Iterable

from mongoengine.errors import NotUniqueError

from ..errors import BadRequest, NotFound
from ..models import User
from ..models.base import iso, utcnow
from ..models.item import Item
from ..models.report import Report
from ..pagination import PageRequest, paginate
from ..plugin_api import ReportQueue, ReviewedItem
from . import abuse
from .items import Touched, delete_item
from .library import Viewer, visible_item

DEFAULT_QUEUE = "Not Specified"


# --- queues ------------------------------------------------------------------------------------


def queue_names(queues: list[ReportQueue], include_system: bool) -> list[str]:
    """The default queue first, then the plugins' queues in the order they were registered."""
    return [DEFAULT_QUEUE] + [q.identifier for q in queues
                              if (include_system or not q.system) and q.identifier != DEFAULT_QUEUE]


def user_queue(queues: list[ReportQueue], name: str | None) -> str:
    """The queue a user asked for (default "Not Specified"); 400 for any other name."""
    if name is None or name == DEFAULT_QUEUE:
        return DEFAULT_QUEUE
    allowed = queue_names(queues, include_system=False)
    if name not in allowed:
        raise BadRequest(f"reportQueue: must be one of {', '.join(allowed)}.")
    return name


# --- opening reports ----------------------------------------------------------------------------


def report_item(viewer: Viewer, user: User, item_id: str, queue: str,
                information: str | None) -> tuple[bool, str | None, str]:
    """(success, report id, message) for one Item reported by ``user``."""
    try:
        item = visible_item(item_id, Viewer(user.id, False, viewer.domain))
    except NotFound:
        return False, None, "Item not found."
    if item.is_deleted:
        return False, None, "Item not found."
    if item.user_id == user.id:
        return False, None, "You cannot report your own Item."
    if item.is_protected:
        return False, None, "The Item is protected and cannot be reported."
    status = "automaticallyDeclined" if abuse.reports_are_auto_declined(user) else "pending"
    if status == "automaticallyDeclined" and Report.objects(item_id=item.id, reporter_key=user.id,
                                                            status="automaticallyDeclined").count():
        return False, None, "You already reported this Item."
    report = Report(id=str(uuid.uuid4()), domain=item.domain, item_id=item.id, author_id=item.user_id,
                    reporter_id=user.id, reporter_key=user.id, status=status, queues=[queue],
                    additional_information=information or None)
    try:
        report.save(force_insert=True)
    except NotUniqueError:
        return False, None, "You already reported this Item; the report is pending."
    return True, report.id, ""


def review_item(queues: list[ReportQueue], item: Item | str) -> list[str]:
    """Let every system queue review a completed Item (or the Item of that id); the ids of
    the reports opened.

    Called by the generation workers with what ``complete_item`` returned. A queue that
    fails is skipped: a review never fails a generation.
    """
    if isinstance(item, str):
        item = Item.objects(id=item, status="completed", is_deleted=False).first()
    if item is None or item.status != "completed" or item.is_deleted:
        return []
    reviewed = ReviewedItem(
        id=item.id, user_id=item.user_id, domain=item.domain, mtype=item.mtype, prompt=item.prompt or "",
        negprompt=item.negprompt, filtered_prompt=item.filtered_prompt, filtered_negprompt=item.filtered_negprompt,
        ignored_words=tuple(item.ignored_words), model_id=item.model_id,
        workflow_template_name=item.workflow_template_name, url=item.url)
    opened = []
    for queue in queues:
        if not queue.system:
            continue
        try:
            reason = queue.review(reviewed)
        except Exception:  # a plugin's fault must not fail the generation
            reason = None
        if not reason:
            continue
        report = Report(id=str(uuid.uuid4()), domain=item.domain, item_id=item.id, author_id=item.user_id,
                        reporter_id=None, reporter_key=f"system:{queue.identifier}", queues=[queue.identifier],
                        additional_information=str(reason)[:5000])
        try:
            report.save(force_insert=True)
            opened.append(report.id)
        except NotUniqueError:
            pass  # this queue already has a pending report on the Item
    return opened


# --- closing ------------------------------------------------------------------------------------


def close_reports(report_ids: list[str], status: str, admin: str, information: str | None,
                  close_related: bool) -> list[tuple[str, bool, str]]:
    ids = list(report_ids)
    if close_related:
        items = {r.item_id for r in Report.objects(id__in=ids).only("item_id")}
        for related in Report.objects(item_id__in=list(items), status="pending").only("id"):
            if related.id not in ids:
                ids.append(related.id)
    out = []
    touched = Touched()
    for report_id in ids:
        report = Report.objects(id=report_id).only("item_id", "status", "author_id").first()
        if report is None:
            out.append((report_id, False, "Report not found."))
            continue
        closed = Report.objects(id=report_id, status__in=("pending", "automaticallyDeclined")).update_one(
            set__status=status, set__approver_id=admin, set__processed_date=utcnow(),
            set__approval_additional_information=information or None)
        if not closed:
            out.append((report_id, False, f"The report is already {report.status}."))
            continue
        message = ""
        if status == "accepted":
            if Item.objects(id=report.item_id, is_flagged=False).update_one(set__is_flagged=True):
                User.objects(id=report.author_id).update_one(inc__flagged_images_count=1)
            deleted, why = delete_item(report.item_id, touched=touched)
            if not deleted and "already deleted" not in why:
                message = f"Accepted; the Item was not deleted: {why}"
        out.append((report_id, True, message))
    touched.flush()
    return out


# --- reading --------------------------------------------------------------------------------------


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _views(reports: list[Report]) -> list[dict]:
    items = {i.id: i for i in Item.objects(id__in=list({r.item_id for r in reports}))}
    users = {u.id: u for u in User.objects(id__in=list({r.author_id for r in reports}))}
    out = []
    for r in reports:
        body: dict[str, Any] = {
            "itemId": r.item_id, "reporterId": r.reporter_id, "reportId": r.id, "reportedDate": iso(r.reported_date),
            "reportStatus": r.status, "reportQueues": list(r.queues),
            "reportAdditionalInformation": r.additional_information,
            "approvalAdditionalInformation": r.approval_additional_information,
            "reportProcessedDate": iso(r.processed_date), "approverId": r.approver_id,
            "downloadCount": r.download_count, "downloadLastDate": iso(r.download_last_date),
        }
        item = items.get(r.item_id)
        if item is not None:
            body["itemMetadata"] = {k: v for k, v in {
                "rawPositivePrompt": item.prompt, "filteredPositivePrompt": item.filtered_prompt,
                "rawNegativePrompt": item.negprompt, "filteredNegativePrompt": item.filtered_negprompt,
                "workflowUsed": item.workflow_template_name, "modelId": item.model_id, "url": item.url,
            }.items() if v is not None}
        author = users.get(r.author_id)
        if author is not None:
            body["authorMetadata"] = {"userId": author.id, "userEmail": author.email, "username": author.username,
                                      "flaggedItemsCount": author.flagged_images_count, "abuse": author.abuse,
                                      "isDisabled": bool(author.is_disabled)}
        out.append({k: v for k, v in body.items() if v is not None})
    return out


REPORT_STATUSES = ("pending", "accepted", "declined", "automaticallyDeclined")


def list_reports(domain: str, args: dict) -> tuple[list[dict], dict]:
    """getReports, newest first by reportedDate; every filter combines with the others."""
    statuses = args.get("reportStatus") or []
    bad = [s for s in statuses if s not in REPORT_STATUSES]
    if bad:
        raise BadRequest(f"reportStatus: unknown status(es) {', '.join(bad)}; use {', '.join(REPORT_STATUSES)}.")
    if args.get("authorId"):
        qs = Report.objects(author_id=args["authorId"], domain=domain)
    else:
        qs = Report.objects(domain=domain)
    if statuses:
        qs = qs.filter(status__in=statuses)
    if args.get("reportIds"):
        qs = qs.filter(id__in=args["reportIds"][:1000])
    if args.get("reportQueues"):
        qs = qs.filter(queues__in=args["reportQueues"])
    after, before = _naive(args.get("createdAfter")), _naive(args.get("createdBefore"))
    if after is not None:
        qs = qs.filter(reported_date__gte=after)
    if before is not None:
        qs = qs.filter(reported_date__lte=before)
    page = paginate(qs, "reported_date", PageRequest.from_args(args))
    return _views(page.items), page.metadata


# --- the Epoch CSV ----------------------------------------------------------------------------------

EPOCH_COLUMNS = (
    "reportId", "reportedDate", "reportStatus", "reportQueues", "itemId", "itemUrl", "mtype", "modelId",
    "rawPositivePrompt", "rawNegativePrompt", "authorId", "authorEmail", "authorUsername", "reporterId",
    "reportAdditionalInformation", "approvalAdditionalInformation", "approverId", "reportProcessedDate",
    "downloadCount",
)


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def epoch_csv(report_ids: Iterable[str]) -> str:
    """The reports as CSV (``EPOCH_COLUMNS``); each one's download is counted."""
    ids = list(report_ids)
    now = utcnow()
    Report.objects(id__in=ids).update(inc__download_count=1, set__download_last_date=now)
    reports = {r.id: r for r in Report.objects(id__in=ids)}
    if not reports:
        raise NotFound("None of the reports exist.")
    ordered = [reports[i] for i in ids if i in reports]
    items = {i.id: i for i in Item.objects(id__in=[r.item_id for r in ordered])}
    users = {u.id: u for u in User.objects(id__in=[r.author_id for r in ordered])}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EPOCH_COLUMNS)
    for r in ordered:
        item, author = items.get(r.item_id), users.get(r.author_id)
        writer.writerow([_cell(v) for v in (
            r.id, iso(r.reported_date), r.status, ";".join(r.queues), r.item_id, item.url if item else "",
            item.mtype if item else "", item.model_id if item else "", item.prompt if item else "",
            item.negprompt if item else "", r.author_id, author.email if author else "",
            author.username if author else "", r.reporter_id or "system", r.additional_information,
            r.approval_additional_information, r.approver_id, iso(r.processed_date), r.download_count,
        )])
    return out.getvalue()
