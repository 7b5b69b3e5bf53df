"""Helpers for the library tests: Items are made through the generation service functions
(``services.items``), everything else goes through the HTTP API."""
from __future__ import annotations

from aimg_app.models import User
from aimg_app.services import items as items_service
from tests.conftest import ADMIN_HEADERS, assert_ok


def domain_of(app) -> str:
    return app.extensions["aimg"].settings.default_domain.identifier


def make_items(app, user_id: str, n: int = 1, mtype: str = "image", **params) -> list[str]:
    """``n`` completed Items of ``user_id`` (one batch), newest last."""
    params = {"prompt": "a lighthouse at dusk", "model_id": "m1", "model_name": "Model One", "steps": 20,
              **params}
    with app.app_context():
        app.extensions["aimg"].connect_mongo()
        made = items_service.create_queued_items(user_id=user_id, domain=domain_of(app), count=n, mtype=mtype,
                                                 params=params)
        for item in made:
            assert items_service.complete_item(item.id, url=f"https://files.example/{item.id}.png", file_id=None,
                                               width=512, height=512, seed=7)
    return [item.id for item in made]


def user_doc(app, user_id: str) -> User:
    with app.app_context():
        app.extensions["aimg"].connect_mongo()
        return User.objects(id=user_id).first()


def set_user_fields(app, user_id: str, **fields) -> None:
    """Test set-up of facts other features own (tier, abuse level)."""
    with app.app_context():
        app.extensions["aimg"].connect_mongo()
        User.objects(id=user_id).update_one(**{f"set__{k}": v for k, v in fields.items()})


def counters(app, user_id: str) -> dict:
    u = user_doc(app, user_id)
    return {"item_count": u.item_count, "root": u.root_folder_item_count, "public": u.public_item_count,
            "pending": u.pending_approval_count}


def publish(client, owner: dict, item_id: str, folder_id: str | None = None) -> None:
    """Owner requests approval, an admin approves; optionally placed in a public folder."""
    assert_ok(client.post("/setItemProperties", json={"imageID": item_id, "publicApprovalStatus": "pending"},
                          headers=owner["headers"]))
    body = assert_ok(client.post("/setPublicApprovalStatus", json={"imageIDs": [item_id], "publicApprovalStatus":
                                                                   "approved"}, headers={**owner["headers"], **ADMIN_HEADERS}))
    assert body["payload"][0]["success"], body
    if folder_id:
        assert assert_ok(client.post("/addImagesToPublicFolder", json={"folderID": folder_id, "imageIDs": [item_id]},
                                     headers=owner["headers"]))["payload"]["success"]


def new_folder(client, owner: dict, public: bool = False, name: str = "f") -> str:
    path = "/createPublicFolder" if public else "/createSelfFolder"
    return assert_ok(client.post(path, json={"name": name}, headers=owner["headers"]))["payload"]["id"]
