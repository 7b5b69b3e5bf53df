"""The contract's pagination ("Annex: Pagination"), one helper for every paginated list.

Two ways: ``limit`` + ``paginationIndex`` (a reference timestamp in epoch ms, exclusive,
newest first) and ``limit`` + ``skipCount``. ``reversePagination`` walks the other way
(oldest first, items newer than the index). The list's reference timestamp field must be
the leading sort key of an index declared on the model, so every page is an index range.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .models.base import epoch_ms, from_epoch_ms

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_INDEX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant a datetime holds


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    pagination_index: int | None = None  # None (or 0): "now" going down, "the beginning" going up
    skip_count: int | None = None
    reverse: bool = False

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> "PageRequest":
        index = args.get("paginationIndex")
        return cls(
            limit=args.get("limit", DEFAULT_LIMIT),
            pagination_index=int(index) if index not in (None, "", "0", 0) else None,
            skip_count=args.get("skipCount"),
            reverse=bool(args.get("reversePagination", False)),
        )


@dataclass
class Page:
    items: list[Any]
    metadata: dict[str, Any]


def paginate(queryset, field: str, page: PageRequest, *, total_count: int | Callable[[], int] | None = None,
             pro_limit_hit: bool | None = None, transform: Callable[[Any], Any] | None = None) -> Page:
    """One page of ``queryset`` (a mongoengine QuerySet), ordered by the datetime ``field``.

    ``total_count`` may be a function (a count query): it is not called when the page holds
    the whole list (first page, nothing more), whose length is then the total.

    A page never ends in the middle of a run of items sharing the same reference
    millisecond when it can avoid it: since the next page starts strictly after the index,
    such a split would skip items, so the page is shortened to end before the run instead.
    """
    qs = queryset
    if page.pagination_index is not None:
        op = "gt" if page.reverse else "lt"
        qs = qs.filter(**{f"{field}__{op}": from_epoch_ms(min(page.pagination_index, MAX_INDEX))})
    qs = qs.order_by(f"{'+' if page.reverse else '-'}{field}", f"{'+' if page.reverse else '-'}id")
    if page.skip_count:
        qs = qs.skip(page.skip_count)
    fetched = list(qs.limit(page.limit + 1))
    has_more = len(fetched) > page.limit
    items = fetched[: page.limit]
    if has_more and items:
        boundary = epoch_ms(getattr(fetched[page.limit], field))
        trimmed = [item for item in items if epoch_ms(getattr(item, field)) != boundary]
        if trimmed and page.skip_count is None:
            items = trimmed
    next_index = str(epoch_ms(getattr(items[-1], field))) if has_more and items else None
    metadata: dict[str, Any] = {
        "paginationIndex": str(page.pagination_index or 0),
        "nextPaginationIndex": next_index,
        "reversePagination": page.reverse,
        "limit": page.limit,
        "count": len(items),
    }
    if page.skip_count is not None:
        metadata["skipCount"] = page.skip_count
    if callable(total_count):
        whole_list = page.pagination_index is None and not page.skip_count and not has_more
        total_count = len(items) if whole_list else total_count()
    if total_count is not None:
        metadata["totalCount"] = total_count
    if pro_limit_hit is not None:
        metadata["proLimitHit"] = pro_limit_hit
    return Page([transform(i) for i in items] if transform else items, metadata)
