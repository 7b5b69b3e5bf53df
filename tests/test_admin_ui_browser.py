"""The Admin UI end to end in a real browser: headless Chromium (Playwright) against
``aimg serve`` and an ``aimg worker`` process on the session's embedded services, with a
fake ComfyUI. Users act through the HTTP API; the admin acts through the pages.

Screenshots of each page are saved under the run's temporary directory; with
``AIMG_UPDATE_SCREENSHOTS=1`` they also replace the ones in ``docs/admin/``.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from aimg_app.devservices.fake_comfyui import FakeComfyUI
from tests.conftest import ADMIN_KEY, STRONG_PASSWORD
from tests.generation_support import clear_generation_queues

ROOT = Path(__file__).resolve().parents[1]
SECRET = "admin-ui-browser-test-secret-0123456789"
DOCS_SHOTS = ROOT / "docs" / "admin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def comfy():
    with FakeComfyUI(render_seconds=0.05) as fake:
        yield fake


@pytest.fixture(scope="module")
def app(make_app, comfy):
    """The in-process app on the server's database: for checks, and to sign test cookies."""
    app = make_app(comfyui_urls=(comfy.url,), secret_key=SECRET)
    clear_generation_queues(app)
    return app


@pytest.fixture(scope="module")
def server(app, services, comfy, tmp_path_factory):
    """``aimg serve`` and ``python -m workers.main`` on the app's database; their output in a log file."""
    settings = app.extensions["aimg"].settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    env.update({k: v for k, v in services.items() if k.startswith("AIMG_")})
    env.update(AIMG_MONGODB_URI=settings.mongodb_uri, AIMG_DATA_DIR=str(services["data_dir"]),
               AIMG_ADMIN_KEYS=f"alice:{ADMIN_KEY}", AIMG_SECRET_KEY=SECRET, AIMG_COMFYUI_URLS=comfy.url,
               AIMG_MIGRATE_ON_START="false", AIMG_LOG_LEVEL="INFO", PYTHONPATH=str(ROOT))
    logs = tmp_path_factory.mktemp("admin-ui-logs")
    port = _free_port()
    out = open(logs / "processes.log", "w")
    processes = [
        subprocess.Popen([sys.executable, "-m", "aimg_app", "serve", "--port", str(port)], cwd=ROOT, env=env,
                         stdout=out, stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "workers.main"], cwd=ROOT, env=env, stdout=out,
                         stderr=subprocess.STDOUT),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/generateStrongPassword", timeout=2)
                break
            except requests.ConnectionError:
                assert all(p.poll() is None for p in processes), (logs / "processes.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "aimg serve did not answer"
                time.sleep(0.2)
        yield {"base": base, "log": logs / "processes.log"}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                # a browser's idle keep-alive connections can hold the threaded server's exit
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        out.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("admin-screenshots")
    update_docs = os.environ.get("AIMG_UPDATE_SCREENSHOTS") == "1"

    def save(page, name: str) -> None:
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # lazy thumbnails load
        wait_for_images(page)
        page.evaluate("window.scrollTo(0, 0)")
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if update_docs:
            DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SHOTS / path.name)

    save.folder = folder
    return save


# --- users, through the API ------------------------------------------------------------------


class ApiUser:
    def __init__(self, base: str):
        self.base = base
        self.email = f"user-{uuid.uuid4().hex[:8]}@example.com"
        self.headers = {"X-Session-ID": str(uuid.uuid4())}
        self.id = self.call("post", "/createUser", json={"email": self.email, "password": STRONG_PASSWORD})["userID"]

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.base + path, headers=self.headers, timeout=30, **kwargs)

    def call(self, method: str, path: str, **kwargs):
        response = self.request(method, path, **kwargs)
        body = response.json()
        assert response.status_code == 200 and not body["hasError"], (path, response.status_code, body)
        return body["payload"]

    def generate(self, prompt: str) -> str:
        item_id = self.call("post", "/generateImage", json={"prompt": prompt, "steps": 4, "seed": 1})["imageID"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = self.call("get", "/getItemStatus", params={"imageID": item_id})
            if status["status"] in ("completed", "failed"):
                return item_id if status["status"] == "completed" else pytest.fail(status)
            time.sleep(0.1)
        pytest.fail("the worker did not complete the Item")

    def public_ids(self, owner_id: str) -> list[str]:
        return [i["id"] for i in self.call("get", "/getPublicCreations", params={"userID": owner_id})]


@pytest.fixture(scope="module")
def owner(server):
    user = ApiUser(server["base"])
    user.folder = user.call("post", "/createPublicFolder", json={"name": "Showcase"})["id"]
    user.items = [user.generate(p) for p in ("a lighthouse at dusk, oil painting", "a red fox in fresh snow",
                                             "a quiet harbour in the fog")]
    return user


def sign_in(page, base: str, key: str = ADMIN_KEY) -> None:
    page.goto(f"{base}/admin/sign-in")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")


def wait_for_images(page, timeout_s: float = 10) -> None:
    """Every thumbnail loaded (polled from here: the page's CSP forbids Playwright's in-page polling)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"):
        assert time.monotonic() < deadline, "thumbnails did not load"
        time.sleep(0.05)


# --- the scenarios ---------------------------------------------------------------------------------


def test_sign_in_and_what_is_refused(app, server, browser, shots):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    base = server["base"]
    page.goto(f"{base}/admin/approval")
    assert page.url.startswith(f"{base}/admin/sign-in")
    shots(page, "sign-in")
    # a wrong key
    sign_in(page, base, key="not-an-admin-key-0000000000")
    assert "not an admin key" in page.inner_text("main") and "/admin/sign-in" in page.url
    # the right one
    sign_in(page, base)
    assert page.url.endswith("/admin/approval") and "alice" in page.inner_text("header")
    cookie = next(c for c in context.cookies() if c["name"] == "aimg_admin")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/admin"
    assert cookie["expires"] > time.time() and ADMIN_KEY not in cookie["value"]
    # a form whose CSRF token was taken out
    page.evaluate("document.querySelector('form.signout input[name=csrf_token]').remove()")
    page.click("form.signout button")
    assert "form expired" in page.inner_text("main")
    page.goto(f"{base}/admin/approval")
    assert page.url.endswith("/admin/approval")  # still signed in: nothing happened
    # an expired cookie: the same session, its expiry in the past (signed with the server's key)
    with app.test_request_context("/admin/"):
        serializer = app.session_interface.get_signing_serializer(app)
    data = serializer.loads(cookie["value"])
    stale = {**cookie, "value": serializer.dumps({**data, "exp": int(time.time()) - 60})}
    context.add_cookies([{k: stale[k] for k in ("name", "value", "domain", "path", "expires", "httpOnly",
                                                 "secure", "sameSite")}])
    page.goto(f"{base}/admin/approval")
    assert page.url.startswith(f"{base}/admin/sign-in")
    context.close()
    assert ADMIN_KEY not in server["log"].read_text()


def test_approve_then_reject_through_the_queue(server, owner, browser, shots):
    base = server["base"]
    stranger = ApiUser(base)
    first, second = owner.items[0], owner.items[1]
    for item_id in (first, second):
        owner.call("post", "/setItemProperties", json={"imageID": item_id, "publicApprovalStatus": "pending"})
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, base)
    tiles = page.locator("li.tile")
    assert tiles.count() == 2
    assert tiles.nth(0).get_attribute("data-item") == first  # oldest first
    assert owner.email in tiles.nth(0).inner_text() and "lighthouse" in tiles.nth(0).inner_text()
    wait_for_images(page)
    shots(page, "approval-pending")
    # keyboard review: the first tile has the focus; "a" approves it
    page.keyboard.press("a")
    page.wait_for_selector("text=Approved 1 Item.")
    # the second one rejected with its button
    page.locator(f"li.tile[data-item='{second}'] button[data-key=r]").click()
    page.wait_for_selector("text=Rejected 1 Item.")
    assert page.locator("li.tile").count() == 0
    # approved: public as soon as the owner places it in a public folder (getPublicCreations' rules)
    assert owner.call("get", "/getItem", params={"imageID": first})["isPublic"] is True
    assert owner.call("post", "/addImagesToPublicFolder", json={"folderID": owner.folder, "imageIDs": [first]})[
        "success"]
    assert stranger.public_ids(owner.id) == [first]
    # rejected after approval: out of the public lists
    page.goto(f"{base}/admin/approval/approved")
    shots(page, "approval-approved")
    page.locator(f"li.tile[data-item='{first}'] button[data-key=r]").click()
    page.wait_for_selector("text=Rejected 1 Item.")
    assert stranger.public_ids(owner.id) == []
    assert owner.call("get", "/getItem", params={"imageID": first})["publicApprovalStatus"] == "rejected"
    page.goto(f"{base}/admin/approval/rejected")
    assert {page.locator("li.tile").nth(i).get_attribute("data-item") for i in range(2)} == {first, second}
    assert "alice" in page.inner_text("main")  # who decided
    shots(page, "approval-rejected")
    # the queue on a phone
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone_page = phone.new_page()
    sign_in(phone_page, base)
    phone_page.goto(f"{base}/admin/approval/rejected")
    shots(phone_page, "approval-phone")
    phone.close()
    context.close()


def test_close_a_report_then_restrict_the_user(server, owner, browser, shots):
    base = server["base"]
    admin_headers = {"X-Administration-Key": ADMIN_KEY}
    third = owner.items[2]
    owner.call("post", "/setItemProperties", json={"imageID": third, "publicApprovalStatus": "pending"})
    approved = requests.post(f"{base}/setPublicApprovalStatus", headers={**owner.headers, **admin_headers},
                             json={"imageIDs": [third], "publicApprovalStatus": "approved"}, timeout=10).json()
    assert approved["payload"][0]["success"]
    owner.call("post", "/addImagesToPublicFolder", json={"folderID": owner.folder, "imageIDs": [third]})
    reporter = ApiUser(base)
    [report] = reporter.call("post", "/reportItems", json={"itemIds": [third], "reportQueue": "Spam",
                                                           "additionalInformation": "Posted ten times today."})
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, base)
    page.goto(f"{base}/admin/reports?queue=Spam")
    tile = page.locator(f"li.tile[data-report='{report['reportId']}']")
    assert "Posted ten times today." in tile.inner_text() and reporter.email in tile.inner_text()
    shots(page, "reports")
    tile.locator("input[name=ids]").check()
    page.fill("input[name=additionalInformation]", "Not spam: a series.")
    page.click("button[name=status][value=declined]")
    page.wait_for_selector("text=Declined 1 report.")
    closed = requests.get(f"{base}/getReports", headers={**owner.headers, **admin_headers},
                          params={"reportIds": report["reportId"]}, timeout=10).json()["payload"][0]
    assert closed["reportStatus"] == "declined" and closed["approverId"] == "alice"
    assert closed["approvalAdditionalInformation"] == "Not spam: a series."
    # the user: found by email, abuse level 9, then generateImage refuses them
    page.goto(f"{base}/admin/users")
    page.fill("input[name=q]", owner.email)
    page.click("form.search button")
    assert owner.id in page.inner_text("main")
    page.select_option("select[name=abuse]", "9")
    page.click("text=Set abuse level")
    page.wait_for_selector("text=Abuse level of")
    assert page.inner_text("[data-field=abuse]").startswith("9")
    refused = owner.request("post", "/generateImage", json={"prompt": "one more"})
    assert refused.status_code == 403 and refused.json()["hasError"] is True
    # a tier given, then everywhere signed out
    page.fill("input[name=tier]", "2")
    page.click("text=Give tier")
    page.wait_for_selector("text=Granted tier 2")
    assert page.inner_text("[data-field=tier]").startswith("2")
    page.click("text=Sign out everywhere")
    page.wait_for_selector(f"text=Signed {owner.email} out of")
    assert owner.request("get", "/getMyCreations").status_code == 401
    shots(page, "users")
    context.close()


def test_generation_and_activity_pages(server, comfy, browser, shots):
    base = server["base"]
    user = ApiUser(base)
    comfy.inject("execution_error", message="CUDA out of memory")
    failed = user.call("post", "/generateImage", json={"prompt": "too big", "steps": 4})["imageID"]
    deadline = time.monotonic() + 30
    while user.call("get", "/getItemStatus", params={"imageID": failed})["status"] != "failed":
        assert time.monotonic() < deadline, "the run did not fail"
        time.sleep(0.1)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, base)
    page.goto(f"{base}/admin/generation")
    text = page.inner_text("main")
    assert "f222" in text and "txt2img-sd15" in text  # a model's and a workflow's queues
    server_row = page.locator(f"tr[data-server='{comfy.url}']").inner_text()
    assert "up" in server_row
    assert "CUDA out of memory" in text and "unknown" not in text
    assert page.locator("text=No worker is registered.").count() == 0  # the worker process is alive
    shots(page, "generation")
    page.goto(f"{base}/admin/activity")
    text = page.inner_text("main")
    assert "admin.signIn" in text and "alice" in text
    shots(page, "activity")
    context.close()
