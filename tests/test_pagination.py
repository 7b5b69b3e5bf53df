"""The pagination helper, through a plugin's paginated list (the Annex: Pagination)."""
from __future__ import annotations

import pytest

from tests.conftest import assert_error, assert_ok

BASE = 1_700_000_000_000


@pytest.fixture(scope="module")
def notes(app):
    """30 notes, one second apart (note-0 oldest), plus 3 sharing one millisecond."""
    client = app.test_client()
    payload = [{"text": f"note-{i}", "createdMs": BASE + i * 1000} for i in range(30)]
    payload += [{"text": f"tie-{i}", "createdMs": BASE + 30_000} for i in range(3)]
    assert_ok(client.post("/test-plugin/notes", json={"notes": payload}))
    return client


def page(client, **query):
    return assert_ok(client.get("/test-plugin/notes", query_string=query))


def test_defaults_newest_first_with_metadata_echo(notes):
    body = page(notes)
    assert len(body["payload"]) == 33
    assert body["payload"][3] == "note-29"
    assert body["metadata"] == {"paginationIndex": "0", "nextPaginationIndex": None, "reversePagination": False,
                                "limit": 100, "count": 33, "totalCount": 33}


def test_walking_with_pagination_index_visits_every_item_once(notes):
    seen, index, pages = [], None, 0
    while True:
        query = {"limit": 4} | ({"paginationIndex": index} if index else {})
        body = page(notes, **query)
        seen += body["payload"]
        pages += 1
        assert body["metadata"]["paginationIndex"] == (index or "0")
        index = body["metadata"]["nextPaginationIndex"]
        if index is None:
            break
        assert pages < 40
    assert sorted(seen) == sorted([f"note-{i}" for i in range(30)] + [f"tie-{i}" for i in range(3)])
    assert len(seen) == len(set(seen))


def test_a_page_does_not_split_items_sharing_a_timestamp(notes):
    # oldest first after note-28: note-29, then the three ties; a page of 2 would end on one tie
    first = page(notes, limit=2, reversePagination="true", paginationIndex=str(BASE + 28_000))
    assert first["payload"] == ["note-29"]
    assert first["metadata"]["nextPaginationIndex"] == str(BASE + 29_000)
    second = page(notes, limit=4, reversePagination="true", paginationIndex=first["metadata"]["nextPaginationIndex"])
    assert sorted(second["payload"]) == ["tie-0", "tie-1", "tie-2"]


def test_pagination_index_is_exclusive(notes):
    body = page(notes, limit=3, paginationIndex=str(BASE + 10_000))
    assert body["payload"] == ["note-9", "note-8", "note-7"]
    assert body["metadata"]["nextPaginationIndex"] == str(BASE + 7_000)


def test_reverse_pagination_walks_oldest_first_after_the_index(notes):
    body = page(notes, limit=3, reversePagination="true", paginationIndex=str(BASE + 10_000))
    assert body["payload"] == ["note-11", "note-12", "note-13"]
    assert body["metadata"]["reversePagination"] is True
    assert page(notes, limit=2, reversePagination="true")["payload"] == ["note-0", "note-1"]


def test_skip_count_jumps_to_a_page(notes):
    body = page(notes, limit=5, skipCount=10, paginationIndex=str(BASE + 30_000))
    assert body["payload"] == [f"note-{i}" for i in range(19, 14, -1)]
    assert body["metadata"]["skipCount"] == 10


def test_last_page_has_null_next_index(notes):
    body = page(notes, limit=5, paginationIndex=str(BASE + 3_000))
    assert body["payload"] == ["note-2", "note-1", "note-0"]
    assert body["metadata"]["nextPaginationIndex"] is None


@pytest.mark.parametrize("query, field", [
    ({"limit": 1001}, "limit"), ({"limit": 0}, "limit"), ({"limit": "ten"}, "limit"),
    ({"paginationIndex": "yesterday"}, "paginationIndex"), ({"paginationIndex": "-5"}, "paginationIndex"),
    ({"skipCount": -1}, "skipCount"), ({"reversePagination": "maybe"}, "reversePagination"),
])
def test_bad_pagination_input_is_400(notes, query, field):
    assert_error(notes.get("/test-plugin/notes", query_string=query), 400, field)


def test_limit_1000_is_accepted(notes):
    assert page(notes, limit=1000)["metadata"]["limit"] == 1000


def test_the_page_query_is_served_by_the_declared_index(app):
    from aimg_app.models.base import from_epoch_ms
    from tests.indexes import covering_index, winning_plan_stages
    from tests.plugins.every_hook import Note

    with app.app_context():
        Note.ensure_indexes()
        assert covering_index(Note, [], [("created_date", -1), ("id", -1)]) is not None
        assert covering_index(Note, [], [("text", 1)]) is None  # the check can fail
        cursor = Note.objects(created_date__lt=from_epoch_ms(BASE + 10_000)).order_by("-created_date", "-id").limit(5)
        stages = winning_plan_stages(cursor.explain())
    if stages is not None:  # a real MongoDB answered
        assert "IXSCAN" in stages and "SORT" not in stages and "COLLSCAN" not in stages
