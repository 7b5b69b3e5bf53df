"""Reading the library: one Item and lists of Items, as their viewer sees them (``ShownItem``;
the Image and ImageInfo schemas of ``api/images.py`` write them).

Who sees what: the owner and admins see an Item whatever its state (short of deletion,
which only admins see through); anyone else sees it only when it is public (approved and
marked public by its owner). Public lists show only publicly visible Items (public and
placed in a public folder). ``publicApprovalStatus`` and private-folder ids are shown to
the owner and admins only. An Item that may not be seen is "not found", never "forbidden",
so ids of private Items cannot be probed.

Every list is one range of a declared index: ``LIST_SHAPES`` names, for each list, the
equality fields and the sort it runs on (a test checks each against the model's indexes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest, NotFound
from ..models import User
from ..models.base import epoch_ms
from ..models.folder import Folder
from ..models.item import Item
from ..models.reaction import Reaction
from ..models.report import Report
from ..models.tag import Tag
from ..pagination import PageRequest, paginate
from . import tiers


@dataclass(frozen=True)
class Viewer:
    user_id: str | None
    is_admin: bool = False
    domain: str | None = None

    def owns(self, item: Item) -> bool:
        return self.user_id is not None and item.user_id == self.user_id

    def sees_private(self, item: Item) -> bool:
        return self.is_admin or self.owns(item)


@dataclass(frozen=True)
class ListShape:
    """The index range a list query runs on: equality fields, then the sort."""

    document: type
    equality: tuple[str, ...]
    sort: tuple[tuple[str, int], ...] = (("completed_date", -1), ("id", -1))
    residual: tuple[str, ...] = ()  # optional filters checked while walking the range


LIST_SHAPES: dict[str, ListShape] = {
    "myCreations": ListShape(Item, ("user_id", "is_deleted", "status"), residual=("is_public",)),
    "myCreations.folder": ListShape(Item, ("user_id", "folder_id", "is_deleted", "status"),
                                    residual=("mtype", "is_public", "public_approval_status")),
    "myCreations.mtype": ListShape(Item, ("user_id", "mtype", "is_deleted", "status"),
                                   residual=("is_public", "public_approval_status")),
    "myCreations.approval": ListShape(Item, ("user_id", "public_approval_status", "is_deleted", "status"),
                                      residual=("is_public", "mtype")),
    "items": ListShape(Item, ("domain", "is_deleted", "status"), residual=("mtype", "is_public", "folder_id")),
    "items.approval": ListShape(Item, ("domain", "public_approval_status", "is_deleted", "status"),
                                residual=("mtype", "is_public", "folder_id")),
    "publicCreations": ListShape(Item, ("domain", "is_publicly_visible"), residual=("mtype",)),
    "publicCreations.user": ListShape(Item, ("user_id", "is_publicly_visible"), residual=("mtype", "domain")),
    "publicCreations.folder": ListShape(Item, ("folder_id", "is_publicly_visible"), residual=("mtype", "user_id")),
    "folderSamples": ListShape(Item, ("folder_id", "is_deleted"), (("folder_added_date", -1), ("id", -1)),
                               residual=("user_id", "status")),
    "selfFolders": ListShape(Folder, ("user_id", "is_public", "is_deleted"), (("created_date", -1), ("id", -1))),
    "publicFolders": ListShape(Folder, ("domain", "is_public", "is_deleted"), (("created_date", -1), ("id", -1))),
    "publicFolders.user": ListShape(Folder, ("user_id", "is_public", "is_deleted"), (("created_date", -1), ("id", -1)),
                                    residual=("domain",)),
    "reports": ListShape(Report, ("domain",), (("reported_date", -1), ("id", -1)), residual=("id", "queues")),
    "reports.status": ListShape(Report, ("domain", "status"), (("reported_date", -1), ("id", -1)),
                                residual=("id", "queues")),
    "reports.author": ListShape(Report, ("author_id",), (("reported_date", -1), ("id", -1)),
                                residual=("domain", "status", "id", "queues")),
    "tags": ListShape(Tag, ("domain",), (("usage_count", -1), ("name", 1)), residual=("name",)),
}


# --- views -------------------------------------------------------------------------------------


def reactions_of(viewer: Viewer, item_ids: list[str]) -> dict[str, str]:
    if viewer.user_id is None or not item_ids:
        return {}
    return {r.item_id: r.kind for r in Reaction.objects(user_id=viewer.user_id, item_id__in=item_ids).only("item_id", "kind")}


@dataclass(frozen=True)
class ShownItem:
    """An Item as one viewer sees it: what the Image and ImageInfo schemas write. The
    viewer's reaction (and, for ImageInfo, the owner and their picture) are read once per
    request by the service, never per row."""

    item: Item
    viewer: Viewer
    reaction: str | None = None
    sample: bool = False  # the reduced view of getSampleItems/getLatestItems
    owner: User | None = None
    picture: str | None = None

    @property
    def private(self) -> bool:
        """batchID and publicApprovalStatus are the owner's and admins' only."""
        return not self.sample and self.viewer.sees_private(self.item)

    @property
    def reacted(self) -> bool:
        """isLiked/isDisliked are said to a signed-in viewer only."""
        return not self.sample and self.viewer.user_id is not None

    @property
    def folder_shown(self) -> bool:
        """A private folder's id is the owner's and admins' only."""
        return (not self.sample and bool(self.item.folder_id)
                and (self.viewer.sees_private(self.item) or bool(self.item.is_publicly_visible)))


def shown(items: list[Item], viewer: Viewer) -> list[ShownItem]:
    """``items`` as ``viewer`` sees them, their reactions read in one query."""
    reactions = reactions_of(viewer, [i.id for i in items])
    return [ShownItem(i, viewer, reactions.get(i.id)) for i in items]


# --- one Item ------------------------------------------------------------------------------------


def _item_with_reaction(item_id: str, viewer: Viewer) -> tuple[Item | None, str | None]:
    """The Item and the viewer's reaction to it: two finds by index (a ``$lookup`` would be
    one round trip on MongoDB, but the embedded server answers it by scanning)."""
    item = Item.objects(id=item_id).first() if item_id else None
    if item is None or viewer.user_id is None:
        return item, None
    return item, reactions_of(viewer, [item.id]).get(item.id)


def visible_item(item_id: str, viewer: Viewer) -> Item:
    """The completed Item ``item_id`` if ``viewer`` may see it, else NotFound."""
    return _visible(Item.objects(id=item_id).first() if item_id else None, viewer)


def _visible(item: Item | None, viewer: Viewer) -> Item:
    if item is None or item.status != "completed" or (viewer.domain and item.domain != viewer.domain):
        raise NotFound("Item not found.")
    if item.is_deleted and not viewer.is_admin:
        raise NotFound("Item not found.")
    if not viewer.sees_private(item) and not item.is_public:
        raise NotFound("Item not found.")
    return item


def get_item(item_id: str, viewer: Viewer) -> ShownItem:
    item, reaction = _item_with_reaction(item_id, viewer)
    return ShownItem(_visible(item, viewer), viewer, reaction)


def get_item_details(item_id: str, viewer: Viewer, picture_of=None) -> ShownItem:
    """ImageInfo; a view by anyone but the owner counts in ``viewCount``."""
    item, reaction = _item_with_reaction(item_id, viewer)
    item = _visible(item, viewer)
    if not viewer.owns(item):
        Item.objects(id=item.id).update_one(inc__view_count=1)
        item.view_count += 1
    owner = User.objects(id=item.user_id).only("username", "profile_picture_file_id", "profile_picture_banned",
                                               "is_disabled").first()
    if owner is not None and owner.is_disabled:  # a deleted account is attributed to nobody
        owner = None
    picture = picture_of(owner) if (picture_of and owner is not None) else None
    return ShownItem(item, viewer, reaction, owner=owner, picture=picture)


def last_completed_item(viewer: Viewer, mtype: str | None) -> ShownItem:
    where = {"user_id": viewer.user_id, "is_deleted": False, "status": "completed"}
    if mtype:
        where["mtype"] = mtype
    item = Item.objects(**where).order_by("-completed_date", "-id").first()
    if item is None:
        raise NotFound("You have no completed Item yet.")
    return shown([item], viewer)[0]


def batch_items(viewer: Viewer, batch_id: str) -> list[ShownItem]:
    items = list(Item.objects(batch_id=batch_id, user_id=viewer.user_id, is_deleted=False, status="completed")
                 .order_by("created_date", "id").limit(1000))
    return shown(items, viewer)


# --- lists -------------------------------------------------------------------------------------------


def _where(shape: str, **values) -> dict:
    """The filter of a list: the shape's equality fields (all given) plus the optional ones."""
    spec = LIST_SHAPES[shape]
    missing = [f for f in spec.equality if f not in values]
    assert not missing, f"{shape} needs {missing}"
    extra = set(values) - set(spec.equality) - set(spec.residual)
    assert not extra, f"{shape} does not declare {extra}"
    return values


def _free_cutoff(user: User, settings, base: dict):
    """Non-premium users browse their newest ``free_library_items`` Items only: the
    completed_date of the last one they may see, or None when no cap applies."""
    cap = settings.free_library_items
    if not cap or tiers.is_premium(user) or user.item_count <= cap:
        return None
    last = Item.objects(**base).order_by("-completed_date", "-id").skip(cap - 1).only("completed_date").first()
    return last.completed_date if last else None


def my_creations(user: User, viewer: Viewer, args: dict, settings) -> tuple[list[ShownItem], dict]:
    """The caller's completed Items (getMyCreations)."""
    folder_id = args.get("folderID")
    filters: dict[str, Any] = {}
    if args.get("mtype"):
        filters["mtype"] = args["mtype"]
    if args.get("isPublic") is not None:
        filters["is_public"] = args["isPublic"]
    if args.get("publicApprovalStatus"):
        filters["public_approval_status"] = args["publicApprovalStatus"]
    common = {"user_id": user.id, "is_deleted": False, "status": "completed"}
    if folder_id:
        if folder_id == "root":
            folder_key, total = None, user.root_folder_item_count
        else:
            folder = Folder.objects(id=folder_id, user_id=user.id, is_deleted=False).only("image_count").first()
            if folder is None:
                raise NotFound("Folder not found.")
            folder_key, total = folder_id, folder.image_count
        where = _where("myCreations.folder", **common, folder_id=folder_key, **filters)
    else:
        total = user.item_count
        if "mtype" in filters:
            where = _where("myCreations.mtype", **common, **filters)
        elif "public_approval_status" in filters:
            where = _where("myCreations.approval", **common, **filters)
        else:
            where = _where("myCreations", **common, **filters)
    page_request = PageRequest.from_args(args)
    qs = Item.objects(**where)
    cutoff = _free_cutoff(user, settings, common) if not tiers.is_premium(user) else None
    pro_limit_hit = None if tiers.is_premium(user) else False
    if cutoff is not None:
        qs = qs.filter(completed_date__gte=cutoff)
    page = paginate(qs, "completed_date", page_request, total_count=max(total, 0), pro_limit_hit=pro_limit_hit)
    if cutoff is not None:
        index = page_request.pagination_index
        reached = (epoch_ms(cutoff) >= index if (page_request.reverse and index) else
                   (not page_request.reverse and page.metadata["nextPaginationIndex"] is None))
        page.metadata["proLimitHit"] = bool(reached)
    return shown(page.items, viewer), page.metadata


def public_creations(viewer: Viewer, args: dict) -> tuple[list[ShownItem], dict]:
    """Publicly visible Items (getPublicCreations). totalCount: with folderID, that public
    folder's public Item count; else with userID, that user's public Item count; else none."""
    filters: dict[str, Any] = {"is_publicly_visible": True}
    if args.get("mtype"):
        filters["mtype"] = args["mtype"]
    total = None
    if args.get("folderID"):
        folder = Folder.objects(id=args["folderID"], is_public=True, is_deleted=False, domain=viewer.domain).only(
            "public_item_count", "user_id").first()
        if folder is None:
            raise NotFound("Public folder not found.")
        # a folder holds its owner's Items only: another userID finds none
        total = folder.public_item_count if args.get("userID") in (None, folder.user_id) else 0
        if args.get("userID"):
            filters["user_id"] = args["userID"]
        where = _where("publicCreations.folder", folder_id=folder.id, **filters)
    elif args.get("userID"):
        owner = User.objects(id=args["userID"], domain=viewer.domain).only("public_item_count").first()
        total = owner.public_item_count if owner else 0
        where = _where("publicCreations.user", user_id=args["userID"], domain=viewer.domain, **filters)
    else:
        where = _where("publicCreations", domain=viewer.domain, **filters)
    page = paginate(Item.objects(**where), "completed_date", PageRequest.from_args(args), total_count=total)
    return shown(page.items, viewer), page.metadata


def latest_items(viewer: Viewer, args: dict) -> tuple[list[ShownItem], dict]:
    where = _where("publicCreations", domain=viewer.domain, is_publicly_visible=True)
    page = paginate(Item.objects(**where), "completed_date", PageRequest.from_args(args),
                    transform=lambda i: ShownItem(i, viewer, sample=True))
    return page.items, page.metadata


def sample_items(viewer: Viewer, limit: int) -> list[ShownItem]:
    """A random sample of publicly visible Items."""
    where = _where("publicCreations", domain=viewer.domain, is_publicly_visible=True)
    pipeline = [{"$match": {"domain": viewer.domain, "is_publicly_visible": True}}, {"$sample": {"size": limit}},
                {"$project": {"_id": 1}}]
    ids = [row["_id"] for row in Item.objects.aggregate(pipeline)]
    items = {i.id: i for i in Item.objects(id__in=ids, **where)}
    return [ShownItem(items[i], viewer, sample=True) for i in ids if i in items]


def admin_items(viewer: Viewer, args: dict) -> tuple[list[ShownItem], dict]:
    """getItems: every completed, non-deleted Item of the domain, admin filters."""
    filters: dict[str, Any] = {}
    if args.get("mtype"):
        filters["mtype"] = args["mtype"]
    if args.get("isPublic") is not None:
        filters["is_public"] = args["isPublic"]
    if args.get("folderID"):
        filters["folder_id"] = None if args["folderID"] == "root" else args["folderID"]
    common = {"is_deleted": False, "status": "completed"}
    if args.get("userID"):
        if "folder_id" in filters:
            where = _where("myCreations.folder", user_id=args["userID"], **common, **filters)
        else:
            approval = ({"public_approval_status": args["publicApprovalStatus"]}
                        if args.get("publicApprovalStatus") else {})
            shape = "myCreations.approval" if approval else ("myCreations.mtype" if "mtype" in filters else "myCreations")
            where = _where(shape, user_id=args["userID"], **common, **approval, **filters)
    elif args.get("publicApprovalStatus"):
        where = _where("items.approval", domain=viewer.domain, public_approval_status=args["publicApprovalStatus"],
                       **common, **filters)
    else:
        where = _where("items", domain=viewer.domain, **common, **filters)
    page = paginate(Item.objects(**where), "completed_date", PageRequest.from_args(args))
    return shown(page.items, viewer), page.metadata


def check_ids(ids: list[str], name: str = "imageIDs", limit: int = 1000) -> list[str]:
    if not ids:
        raise BadRequest(f"{name}: at least one id is required.")
    if len(ids) > limit:
        raise BadRequest(f"{name}: at most {limit} ids per request.")
    seen: list[str] = []
    for item_id in ids:
        if item_id not in seen:
            seen.append(item_id)
    return seen
