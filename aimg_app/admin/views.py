"""The Admin UI's pages. Views are thin: read the form, call the service the API uses,
record the action, redirect back (so a reload never repeats an action)."""
from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .. import context
from ..api.users import AdminUserSchema
from ..errors import ApiError
from ..models import Session, User
from ..models.admin_action import AdminAction
from ..models.billing import Subscription
from ..models.item import Item
from ..models.report import Report
from ..pagination import PageRequest, paginate
from ..ratelimit import limiter
from ..services import approval as approval_service
from ..services import memberships
from ..services import reports as reports_service
from ..services import users as users_service
from ..services.library import ListShape
from . import URL_PREFIX, audit, auth, csrf, fleet

log = logging.getLogger("aimg.admin")

bp = Blueprint("admin", __name__, url_prefix=URL_PREFIX, template_folder="templates", static_folder="static",
               static_url_path="/static")

PAGE_SIZE = 48
APPROVAL_TABS = {"pending": "Pending", "approved": "Approved", "rejected": "Rejected"}
ALL_QUEUES = ""

# Every list of this UI is one range of a declared index (checked by a test, like the library's).
LIST_SHAPES: dict[str, ListShape] = {
    "approval": ListShape(Item, ("domain", "public_approval_status", "is_deleted", "status")),
    "reports": ListShape(Report, ("domain", "status"), (("reported_date", -1), ("id", -1))),
    "reports.queue": ListShape(Report, ("domain", "status", "queues"), (("reported_date", -1), ("id", -1))),
    "activity": ListShape(AdminAction, ("domain",), (("created_date", -1), ("id", -1))),
}

ABUSE_LEVELS = {
    0: "no restriction",
    1: "cannot submit Items for public approval",
    2: "+ reports are declined automatically",
    3: "+ one generation at a time",
    4: "+ cannot change username or profile picture",
    5: "+ never uses the priority queues",
    6: "+ (reserved)",
    7: "+ (reserved)",
    8: "+ (reserved)",
    9: "+ generation and publishing refused",
}

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data: http: https:; media-src 'self' http: https:; "
                                "script-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'; object-src 'none'"),
}


# --- every request ------------------------------------------------------------------------------


@bp.before_request
def _guard():
    if request.endpoint in ("admin.static", "admin.sign_in"):
        if request.endpoint == "admin.sign_in" and request.method == "POST":
            csrf.protect()
        return None
    g.admin = auth.current_admin()
    if g.admin is None:
        auth.sign_out()  # an expired or revoked session is dropped, not kept around
        return redirect(url_for("admin.sign_in", next=request.path if request.method == "GET" else None))
    if request.method == "POST":
        csrf.protect()
    return None


@bp.after_request
def _headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@bp.errorhandler(CSRFError)
def _csrf_error(error):
    return render_template("admin/error.html", status=400, message="The form expired or did not come from this "
                           "console. Reload the page and try again."), 400


@bp.errorhandler(HTTPException)
def _http_error(error):
    return render_template("admin/error.html", status=error.code, message=error.description), error.code or 500


@bp.errorhandler(ApiError)
def _api_error(error):
    return render_template("admin/error.html", status=error.status, message=error.message), error.status


@bp.app_template_filter("when")
def _when(value):
    if value is None:
        return "—"
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _domain() -> str:
    return context.domain().identifier


def _after_arg() -> int | None:
    raw = request.args.get("after", "")
    return int(raw) if raw.isdigit() else None


def _page_links(endpoint: str, metadata: dict, **params) -> dict:
    nxt = metadata.get("nextPaginationIndex")
    return {"next": url_for(endpoint, **params, after=nxt) if nxt else None,
            "first": url_for(endpoint, **params) if request.args.get("after") else None}


def _back(default: str) -> str:
    """Where a form returns to: a path of this console, never another site."""
    target = request.form.get("back", "")
    return target if target.startswith(URL_PREFIX + "/") and "//" not in target and "\\" not in target else default


def _ids(field: str = "ids") -> list[str]:
    return list(dict.fromkeys(i for i in request.form.getlist(field) if i and len(i) <= 128))[:PAGE_SIZE * 4]


def _thumb(item: Item | None, width: int = 360) -> str | None:
    if item is None:
        return None
    if item.file_id:
        # through the console (its session), not /getFile: the Items moderated here are
        # not public yet, or deleted, and getFile serves those to nobody but their owner
        return url_for("admin.item_file", file_id=item.file_id, width=width)
    # Jinja escapes markup, not URL schemes: only a web address or a path of ours becomes a src
    url = (item.url or "").strip()
    if url.lower().startswith(("https://", "http://")) or (url.startswith("/") and not url.startswith("//")):
        return url
    return None


@bp.route("/files/<file_id>")
def item_file(file_id: str):
    from ..api.technical import file_response
    from ..services import files as files_service

    width = request.args.get("width", "")
    content = files_service.read_file(context.resources().files, file_id,
                                      width=min(int(width), 8192) or None if width.isdigit() else None)
    return file_response(content)


# --- sign-in ------------------------------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"], deduct_when=lambda response: response.status_code == 403)
def sign_in():
    if request.method == "POST":
        name = auth.match_key(request.form.get("key", ""))
        if name is None:
            log.warning("admin sign-in refused", extra={"remote": request.remote_addr})
            return render_template("admin/sign_in.html", error="This key is not an admin key."), 403
        auth.sign_in(name)
        audit.record(_domain(), name, "admin.signIn", "admin", name)
        target = request.args.get("next", "")
        ok = (target.startswith(URL_PREFIX + "/") and "//" not in target and "\\" not in target
              and not any(ord(c) < 32 or ord(c) == 127 for c in target))
        return redirect(target if ok else url_for("admin.approval"))
    if auth.current_admin():
        return redirect(url_for("admin.approval"))
    return render_template("admin/sign_in.html", error=None)


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    audit.record(_domain(), g.admin, "admin.signOut", "admin", g.admin)
    auth.sign_out()
    flash("Signed out.", "ok")
    return redirect(url_for("admin.sign_in"))


@bp.route("/")
def home():
    return redirect(url_for("admin.approval"))


# --- approval -----------------------------------------------------------------------------------


def _open_reports(item_ids: list[str]) -> dict[str, list[Report]]:
    found: dict[str, list[Report]] = {}
    for report in Report.objects(item_id__in=item_ids, status="pending"):
        found.setdefault(report.item_id, []).append(report)
    return found


@bp.route("/approval", defaults={"tab": "pending"})
@bp.route("/approval/<tab>")
def approval(tab):
    if tab not in APPROVAL_TABS:
        abort(404)
    qs = Item.objects(domain=_domain(), public_approval_status=tab, is_deleted=False, status="completed")
    # pending: oldest first, the queue is worked through in order; the others: newest first
    page = paginate(qs, "completed_date", PageRequest(limit=PAGE_SIZE, pagination_index=_after_arg(),
                                                       reverse=tab == "pending"))
    items = page.items
    owners = {u.id: u for u in User.objects(id__in=list({i.user_id for i in items})).only("id", "email", "username")}
    reports = _open_reports([i.id for i in items])
    cards = [{"item": i, "thumb": _thumb(i), "owner": owners.get(i.user_id), "reports": reports.get(i.id, []),
              "model": i.model_name or i.model_id or i.workflow_template_name or "—"} for i in items]
    return render_template("admin/approval.html", tab=tab, tabs=APPROVAL_TABS, cards=cards,
                           pages=_page_links("admin.approval", page.metadata, tab=tab))


@bp.route("/approval", methods=["POST"])
def decide():
    one = request.form.get("one", "")
    if one:
        item_id, _, status = one.rpartition(":")
        ids = [item_id]
    else:
        ids, status = _ids(), request.form.get("decision", "")
    if status not in ("approved", "rejected"):
        abort(400, "Choose approve or reject.")
    if not ids:
        flash("Select at least one Item.", "error")
        return redirect(_back(url_for("admin.approval")))
    ours = {i.id for i in Item.objects(id__in=ids, domain=_domain()).only("id")}
    done, failed = 0, []
    for item_id in ids:
        success, message = (approval_service.set_public_approval_status(item_id, status, g.admin) if item_id in ours
                            else (False, "Item not found."))
        audit.record(_domain(), g.admin, f"approval.{status}", "item", item_id, success, message=message or None)
        if success:
            done += 1
        else:
            failed.append(f"{item_id}: {message}")
    if done:
        flash(f"{'Approved' if status == 'approved' else 'Rejected'} {done} Item{'s' if done != 1 else ''}.", "ok")
    for line in failed:
        flash(line, "error")
    return redirect(_back(url_for("admin.approval")))


# --- reports ------------------------------------------------------------------------------------


@bp.route("/reports")
def reports():
    queues = reports_service.queue_names(context.resources().report_queues, include_system=True)
    queue = request.args.get("queue", ALL_QUEUES)
    if queue != ALL_QUEUES and queue not in queues:
        abort(404)
    qs = Report.objects(domain=_domain(), status="pending", **({"queues": queue} if queue else {}))
    page = paginate(qs, "reported_date", PageRequest(limit=PAGE_SIZE, pagination_index=_after_arg(), reverse=True))
    found = page.items
    items = {i.id: i for i in Item.objects(id__in=list({r.item_id for r in found}))}
    people = {u.id: u for u in User.objects(id__in=list({r.author_id for r in found} |
                                                         {r.reporter_id for r in found if r.reporter_id}))
              .only("id", "email", "username", "abuse", "flagged_images_count")}
    rows = [{"report": r, "item": items.get(r.item_id), "thumb": _thumb(items.get(r.item_id)),
             "author": people.get(r.author_id), "reporter": people.get(r.reporter_id) if r.reporter_id else None}
            for r in found]
    return render_template("admin/reports.html", queues=queues, queue=queue, rows=rows,
                           pages=_page_links("admin.reports", page.metadata, **({"queue": queue} if queue else {})))


@bp.route("/reports", methods=["POST"])
def close_reports():
    one = request.form.get("one", "")
    if one:
        report_id, _, status = one.rpartition(":")
        ids = [report_id]
    else:
        ids, status = _ids(), request.form.get("status", "")
    if status not in ("accepted", "declined"):
        abort(400, "Choose accept or decline.")
    if not ids:
        flash("Select at least one report.", "error")
        return redirect(_back(url_for("admin.reports")))
    info = (request.form.get("additionalInformation") or "").strip()[:5000] or None
    related = request.form.get("closeRelated") == "on"
    ours = [r.id for r in Report.objects(id__in=ids, domain=_domain()).only("id")]
    outcome = reports_service.close_reports(ours, status, g.admin, info, related) if ours else []
    outcome += [(i, False, "Report not found.") for i in ids if i not in ours]
    closed = 0
    for report_id, success, message in outcome:
        audit.record(_domain(), g.admin, f"report.{status}", "report", report_id, success, message=message or None,
                     additionalInformation=info)
        closed += bool(success)
        if message:
            flash(f"{report_id}: {message}", "ok" if success else "error")
    if closed:
        flash(f"{'Accepted' if status == 'accepted' else 'Declined'} {closed} report{'s' if closed != 1 else ''}.",
              "ok")
    return redirect(_back(url_for("admin.reports")))


# --- users --------------------------------------------------------------------------------------


def _user_or_404(user_id: str) -> User:
    user = User.objects(id=user_id, domain=_domain()).first()
    if user is None:
        abort(404, "No such user.")
    return user


@bp.route("/users")
def users():
    query = (request.args.get("q") or "").strip()[:254]
    user, view, sessions, grants, actions, session_count = None, None, [], [], [], 0
    if query:
        user = User.objects(domain=_domain(), email=users_service.normalize_email(query)).first() if "@" in query \
            else User.objects(id=query, domain=_domain()).first()
    if user is not None:
        view = AdminUserSchema().dump(users_service.admin_user(user))
        sessions = list(Session.objects(user_id=user.id).only("id", "created_date", "updated_date")
                        .order_by("-updated_date").limit(20))
        session_count = Session.objects(user_id=user.id).count()
        grants = [s for s in Subscription.objects(user_id=user.id, status="active") if s.processor == "admin"]
        actions = list(AdminAction.objects(target_id=user.id).order_by("-created_date", "-id").limit(20))
    return render_template("admin/users.html", query=query, user=user, view=view, sessions=sessions, grants=grants,
                           actions=actions, abuse_levels=ABUSE_LEVELS, session_count=session_count)


def _back_to_user(user: User):
    return redirect(url_for("admin.users", q=user.id))


@bp.route("/users/<user_id>/abuse", methods=["POST"])
def set_abuse(user_id):
    user = _user_or_404(user_id)
    raw = request.form.get("abuse", "")
    if not raw.isdigit() or int(raw) not in ABUSE_LEVELS:
        abort(400, "The abuse level is a number from 0 to 9.")
    before = user.abuse or 0
    level = users_service.set_abuse_level(user, int(raw))
    audit.record(_domain(), g.admin, "user.abuse", "user", user.id, before=before, after=level)
    flash(f"Abuse level of {user.email}: {before} → {level}.", "ok")
    return _back_to_user(user)


@bp.route("/users/<user_id>/tier", methods=["POST"])
def grant_tier(user_id):
    user = _user_or_404(user_id)
    product = (request.form.get("productId") or "admin-ui").strip()
    raw_tier, raw_until = request.form.get("tier", ""), (request.form.get("until") or "").strip()
    active = request.form.get("isActive", "true") == "true"
    if not raw_tier.isdigit() or not 1 <= int(raw_tier) <= 9:
        abort(400, "The tier is a number from 1 to 9.")
    until = None
    if raw_until:
        try:
            until = dt.datetime.fromisoformat(raw_until).replace(tzinfo=None)
        except ValueError:
            abort(400, "The end date must look like 2030-12-31.")
    body = {"email": user.email, "productId": product, "tier": int(raw_tier), "isActive": active,
            "deactivationDate": until, "additionalInformation": (request.form.get("note") or "").strip()[:2000] or None}
    from ..api.billing import SetAdminTierSchema  # the API's own rules for productId and tier

    errors = SetAdminTierSchema().validate({"productId": product, "email": user.email, "tier": int(raw_tier),
                                            "isActive": active})
    if errors:
        abort(400, "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in errors.items()))
    memberships.grant(context.resources(), context.domain(), body, g.admin)
    audit.record(_domain(), g.admin, "user.tier.grant" if active else "user.tier.revoke", "user", user.id,
                 productId=product, tier=int(raw_tier), until=until.isoformat() if until else None)
    flash(f"{'Granted' if active else 'Took back'} tier {raw_tier} ({product}) for {user.email}.", "ok")
    return _back_to_user(user)


@bp.route("/users/<user_id>/sign-out", methods=["POST"])
def sign_out_everywhere(user_id):
    user = _user_or_404(user_id)
    count = users_service.revoke_other_sessions(user, None)
    audit.record(_domain(), g.admin, "user.signOutEverywhere", "user", user.id, sessions=count)
    flash(f"Signed {user.email} out of {count} session{'s' if count != 1 else ''}.", "ok")
    return _back_to_user(user)


# --- generation and activity ---------------------------------------------------------------------


@bp.route("/generation")
def generation():
    return render_template("admin/generation.html", fleet=fleet.overview(context.resources(), _domain()))


@bp.route("/activity")
def activity():
    page = paginate(AdminAction.objects(domain=_domain()), "created_date",
                    PageRequest(limit=100, pagination_index=_after_arg()))
    return render_template("admin/activity.html", actions=page.items,
                           pages=_page_links("admin.activity", page.metadata))

