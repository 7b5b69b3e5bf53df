"""Every paginated list of the library runs on a declared index (``LIST_SHAPES``).

Structural check everywhere (the equality fields lead an index, the sort follows); against
a real MongoDB (``AIMG_MONGODB_URI``), each shape's plan is also an index scan without an
in-memory sort.
"""
from __future__ import annotations

import datetime as dt

import pytest

from aimg_app.services.library import LIST_SHAPES
from tests.indexes import covering_index, winning_plan_stages

_SAMPLE = {"user_id": "u", "folder_id": "f", "is_deleted": False, "status": "completed", "mtype": "image",
           "public_approval_status": "pending", "domain": "d", "is_publicly_visible": True, "is_public": False,
           "author_id": "a"}


@pytest.mark.parametrize("name", sorted(LIST_SHAPES))
def test_list_shape_is_served_by_a_declared_index(app, name):
    shape = LIST_SHAPES[name]
    with app.app_context():
        shape.document.ensure_indexes()
        keys = covering_index(shape.document, list(shape.equality), list(shape.sort))
        assert keys is not None, f"{name}: no index starts with {shape.equality} then {shape.sort}"
        query = {field: _SAMPLE.get(field, "x") for field in shape.equality}
        order = [("+" if d > 0 else "-") + f for f, d in shape.sort]
        sort_field = shape.sort[0][0]
        cursor = shape.document.objects(**query, **{f"{sort_field}__lt": dt.datetime(2100, 1, 1)}
                                        if sort_field.endswith("date") else {}).order_by(*order).limit(10)
        stages = winning_plan_stages(cursor.explain())
    if stages is not None:  # a real MongoDB answered
        assert "IXSCAN" in stages and "SORT" not in stages and "COLLSCAN" not in stages, (name, stages)


def test_the_check_fails_for_an_undeclared_shape(app):
    from aimg_app.models.item import Item

    with app.app_context():
        Item.ensure_indexes()
        assert covering_index(Item, ["prompt"], [("completed_date", -1)]) is None
        assert covering_index(Item, ["user_id", "is_deleted", "status"], [("view_count", -1)]) is None
