"""Reports, report-queue plugins and the Epoch CSV through the HTTP API."""
from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, new_session_headers, sign_up
from tests.library_helpers import make_items, publish, set_user_fields, user_doc

ADMIN = {**new_session_headers(), **ADMIN_HEADERS}


def report(client, who, ids, **extra):
    return assert_ok(client.post("/reportItems", json={"itemIds": ids, **extra}, headers=who["headers"]))["payload"]


def reports(client, **query):
    return assert_ok(client.get("/getReports", query_string=query, headers=ADMIN))


def public_item(app, client, owner, **params):
    [item_id] = make_items(app, owner["user_id"], **params)
    publish(client, owner, item_id)
    return item_id


def test_queues_from_plugins(client, user):
    users_view = assert_ok(client.get("/getReportQueues", headers=user["headers"]))["payload"]
    assert users_view[0] == "Not Specified" and "Test User Queue" in users_view and "Underage" in users_view
    assert "Test System Queue" not in users_view and "Prompt Filter" not in users_view
    admins_view = assert_ok(client.get("/getReportQueues", headers=ADMIN))["payload"]
    assert {"Test System Queue", "Prompt Filter"} <= set(admins_view)


def test_report_rules(app, client, user):
    target = public_item(app, client, user)
    [private] = make_items(app, user["user_id"])
    protected = public_item(app, client, user)
    assert_ok(client.post("/setProtected", json={"imageIDs": [protected]}, headers=ADMIN))
    reporter = sign_up(client)
    result = report(client, reporter, [target, private, protected, "missing"], reportQueue="Underage",
                    additionalInformation="looks young")
    assert result[0]["success"] is True and result[0]["reportId"]
    assert [r["success"] for r in result[1:]] == [False, False, False]
    assert all(r["reportId"] is None for r in result[1:])
    assert "protected" in result[2]["message"]
    again = report(client, reporter, [target])[0]
    assert again["success"] is False and "pending" in again["message"]
    own = report(client, user, [target])[0]
    assert own["success"] is False and "own" in own["message"]
    assert_error(client.post("/reportItems", json={"itemIds": [target], "reportQueue": "Prompt Filter"},
                             headers=reporter["headers"]), 400, "reportQueue")
    assert_error(client.post("/reportItems", json={"itemIds": [target]}, headers=new_session_headers()), 401)
    listed = reports(client, authorId=user["user_id"])["payload"]
    assert len(listed) == 1
    entry = listed[0]
    assert entry["itemId"] == target and entry["reporterId"] == reporter["user_id"]
    assert entry["reportStatus"] == "pending" and entry["reportQueues"] == ["Underage"]
    assert entry["reportAdditionalInformation"] == "looks young" and entry["downloadCount"] == 0
    assert entry["itemMetadata"]["rawPositivePrompt"] == "a lighthouse at dusk"
    assert entry["authorMetadata"]["userEmail"] == user["email"] and entry["authorMetadata"]["flaggedItemsCount"] == 0
    assert_error(client.get("/getReports", headers=reporter["headers"]), 403)


def test_parallel_reports_by_one_user_open_one(app, client, user):
    target = public_item(app, client, user)
    reporter = sign_up(client)

    def send(_):
        return app.test_client().post("/reportItems", json={"itemIds": [target]}, headers=reporter["headers"]).get_json()

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(send, range(6)))
    assert sum(a["payload"][0]["success"] for a in answers) == 1
    assert len(reports(client, authorId=user["user_id"])["payload"]) == 1


def test_abusive_reporters_are_declined_automatically(app, client, user):
    target = public_item(app, client, user)
    reporter = sign_up(client)
    set_user_fields(app, reporter["user_id"], abuse=2)
    result = report(client, reporter, [target])[0]
    assert result["success"] is True
    listed = reports(client, reportStatus="automaticallyDeclined", authorId=user["user_id"])["payload"]
    assert [r["reportId"] for r in listed] == [result["reportId"]]
    assert reports(client, reportStatus="pending", authorId=user["user_id"])["payload"] == []


def test_close_reports_accept_deletes_and_flags_once(app, client, user):
    target = public_item(app, client, user)
    other = public_item(app, client, user)
    first, second, third = sign_up(client), sign_up(client), sign_up(client)
    r1 = report(client, first, [target])[0]["reportId"]
    r2 = report(client, second, [target])[0]["reportId"]
    r3 = report(client, third, [other])[0]["reportId"]
    assert_error(client.post("/closeReports", json={"reportIds": [r1], "reportStatus": "pending"}, headers=ADMIN),
                 400, "reportStatus")
    closed = assert_ok(client.post("/closeReports", json={"reportIds": [r1], "reportStatus": "accepted",
                                                          "additionalInformation": "confirmed",
                                                          "closeRelatedReports": True}, headers=ADMIN))["payload"]
    assert {c["id"] for c in closed} == {r1, r2} and all(c["success"] for c in closed)
    assert_error(client.get("/getItem", query_string={"imageID": target}, headers=user["headers"]), 404)
    assert user_doc(app, user["user_id"]).flagged_images_count == 1
    entry = reports(client, reportIds=r1)["payload"][0]
    assert entry["reportStatus"] == "accepted" and entry["approverId"] == "alice"
    assert entry["approvalAdditionalInformation"] == "confirmed" and entry["reportProcessedDate"]
    again = assert_ok(client.post("/closeReports", json={"reportIds": [r1, "missing"], "reportStatus": "declined"},
                                  headers=ADMIN))["payload"]
    assert [c["success"] for c in again] == [False, False]
    declined = assert_ok(client.post("/closeReports", json={"reportIds": [r3], "reportStatus": "declined"},
                                     headers=ADMIN))["payload"]
    assert declined[0]["success"] is True
    assert_ok(client.get("/getItem", query_string={"imageID": other}, headers=user["headers"]))


def test_filters_dates_and_queues(app, client, user):
    target = public_item(app, client, user)
    reporter = sign_up(client)
    rid = report(client, reporter, [target], reportQueue="Spam")[0]["reportId"]
    entry = reports(client, reportIds=rid)["payload"][0]
    when = entry["reportedDate"]
    assert [r["reportId"] for r in reports(client, reportIds=rid, createdAfter=when, createdBefore=when)["payload"]] == [rid]
    assert reports(client, reportIds=rid, createdAfter="2999-01-01T00:00:00Z")["payload"] == []
    assert reports(client, reportIds=rid, createdBefore="2000-01-01T00:00:00Z")["payload"] == []
    assert [r["reportId"] for r in reports(client, reportIds=rid, reportQueues="Spam,Other")["payload"]] == [rid]
    assert reports(client, reportIds=rid, reportQueues="Other")["payload"] == []
    assert_error(client.get("/getReports", query_string={"reportStatus": "open"}, headers=ADMIN), 400, "reportStatus")
    assert_error(client.get("/getReports", query_string={"createdAfter": "yesterday"}, headers=ADMIN), 400, "createdAfter")


def test_system_queue_opens_reports_on_completed_items(app, client, user):
    from aimg_app.services.reports import review_item

    [flagged] = make_items(app, user["user_id"], prompt="please report-me", ignored_words=["bad", "word"])
    [clean] = make_items(app, user["user_id"], prompt="a cat")
    with app.app_context():
        queues = app.extensions["aimg"].report_queues
        opened = review_item(queues, flagged)
        assert len(opened) == 2  # the test queue and the first-party prompt filter
        assert review_item(queues, flagged) == []  # one pending report per queue
        assert review_item(queues, clean) == []
    listed = reports(client, reportQueues="Prompt Filter", authorId=user["user_id"])["payload"]
    assert len(listed) == 1 and "bad, word" in listed[0]["reportAdditionalInformation"]
    assert "reporterId" not in listed[0]


def test_download_reports_for_epoch_csv(app, client, user):
    target = public_item(app, client, user, prompt="=HYPERLINK(\"x\")")
    reporter = sign_up(client)
    rid = report(client, reporter, [target], additionalInformation="csv, with \"quotes\"")[0]["reportId"]
    assert_error(client.get("/downloadReportsForEpoch", query_string={"reportIds": rid}, headers=user["headers"]), 403)
    response = client.get("/downloadReportsForEpoch", query_string={"reportIds": rid}, headers=ADMIN)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 1
    row = rows[0]
    assert row["reportId"] == rid and row["itemId"] == target and row["authorEmail"] == user["email"]
    assert row["reportAdditionalInformation"] == "csv, with \"quotes\""
    assert row["rawPositivePrompt"].startswith("'=")  # never a live spreadsheet formula
    client.get("/downloadReportsForEpoch", query_string={"reportIds": rid}, headers=ADMIN)
    entry = reports(client, reportIds=rid)["payload"][0]
    assert entry["downloadCount"] == 2 and entry["downloadLastDate"]
    assert_error(client.get("/downloadReportsForEpoch", query_string={"reportIds": "missing"}, headers=ADMIN), 404)
    assert_error(client.get("/downloadReportsForEpoch", headers=ADMIN), 400, "reportIds")
