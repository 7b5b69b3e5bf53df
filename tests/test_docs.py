"""The API documentation: /docs renders with no network, /openapi.json is valid OpenAPI 3."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.live import serve_app

ARTIFACTS = Path(os.environ.get("AIMG_TEST_ARTIFACTS", "test-artifacts"))
LOOPBACK = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def live_api(app):
    with serve_app(app) as url:
        yield url


def test_docs_render_from_the_package_with_no_external_host(page, live_api):
    html = page.context.request.get(f"{live_api}/docs").text()
    assert "cdn." not in html and "https://" not in html
    hosts = []
    page.on("request", lambda request: hosts.append(urlsplit(request.url).hostname))
    # Anything leaving loopback would fail here (and hang offline): refuse it outright.
    page.route(lambda url: urlsplit(url).hostname not in LOOPBACK, lambda route: route.abort())
    page.goto(f"{live_api}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "AIMG" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag-section", timeout=20_000)
    assert page.locator(".opblock-tag-section").count() >= 10  # one per chapter
    assert page.locator("button.authorize").count() == 1  # security schemes are declared
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "docs.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    assert set(hosts) <= LOOPBACK, set(hosts) - LOOPBACK


def _document(app) -> dict:
    return app.test_client().get("/openapi.json").get_json()


def _operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, op


def test_the_document_is_valid_openapi_3(app):
    from openapi_spec_validator import OpenAPIV30SpecValidator

    errors = [str(e).splitlines()[0] for e in OpenAPIV30SpecValidator(_document(app)).iter_errors()]
    assert errors == []


DESIGN_NOTES = ("ARCHITECTURE", "SPEC-GAPS", "RELIABILITY", "COMFYUI-PROTOCOL", "design/")


def test_nothing_cites_design_notes_that_are_not_in_the_repository(app):
    """The public document and the code say the thing itself (or name a file of the repository)."""
    import json

    text = json.dumps(_document(app))
    assert [n for n in DESIGN_NOTES if n in text] == []
    root = Path(__file__).resolve().parent.parent
    cited = [f"{path.relative_to(root)}: {note}" for folder in ("aimg_app", "plugins", "workers", "docs")
             for path in (root / folder).rglob("*") if path.suffix in (".py", ".md", ".html")
             for note in DESIGN_NOTES if note in path.read_text()]
    assert cited == []


def test_every_operation_is_named_tagged_summarised_and_has_examples(app):
    from aimg_app.api.openapi import CHAPTERS

    doc = _document(app)
    names = set()
    for path, method, op in _operations(doc):
        where = f"{method.upper()} {path}"
        if "{" not in path and not path.startswith(("/webhooks", "/checkout")):
            assert op["operationId"] == path.rsplit("/", 1)[-1], where
        names.add(op["operationId"])
        assert op["tags"] and set(op["tags"]) <= set(CHAPTERS.values()), where
        assert op.get("summary") and "\n" not in op["summary"] and "``" not in op["summary"], where
        assert "``" not in op.get("description", ""), where
        assert "security" in op, where
        for media_type, media in op.get("requestBody", {}).get("content", {}).items():
            assert "example" in media, (where, media_type)
        assert all(p.get("in") in {"query", "header", "path", "cookie"} for p in op.get("parameters", []) if "in" in p)
        answers = [r for r in op["responses"].values() if "content" in r and "application/json" in r["content"]]
        assert all("example" in r["content"]["application/json"] for r in answers), where
    assert len(names) == len(list(_operations(doc)))
    assert {t["name"] for t in doc["tags"]} <= set(CHAPTERS.values())
    upload = doc["paths"]["/uploadFile"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"] and "file" in upload["multipart/form-data"]["schema"]["properties"]
    assert doc["paths"]["/createUser"]["post"]["security"] == [{"session": []}, {}]
    assert doc["paths"]["/pgQuery"]["post"]["security"] == [{"adminKey": []}]
    assert doc["paths"]["/getMyCreations"]["get"]["security"] == [{"session": []}]
    assert doc["paths"]["/generateStrongPassword"]["get"]["security"] == []


def _example_request(doc: dict, path: str, method: str, op: dict) -> dict:
    params = [doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p
              for p in doc["paths"][path].get("parameters", []) + op.get("parameters", [])]
    query = {p["name"]: p["example"] for p in params if p["in"] == "query" and "example" in p}
    content = op.get("requestBody", {}).get("content", {})
    kwargs: dict = {"query_string": query}
    if "application/json" in content:
        kwargs["json"] = content["application/json"]["example"]
    elif "multipart/form-data" in content:
        import io

        kwargs["data"] = {**content["multipart/form-data"]["example"], "file": (io.BytesIO(b"x"), "x.txt")}
    return kwargs


def test_admin_only_operations_refuse_a_session_without_the_admin_key(app, client, user):
    """The document's security matches what the server enforces: its own example request,
    sent by a signed-in user without the admin key, is refused."""
    doc = _document(app)
    admin_only = [(path, method, op) for path, method, op in _operations(doc) if op["security"] == [{"adminKey": []}]]
    assert len(admin_only) >= 19
    for path, method, op in admin_only:
        response = client.open(path, method=method.upper(), headers=user["headers"],
                               **_example_request(doc, path, method, op))
        assert response.status_code == 403, (path, response.status_code, response.get_data(as_text=True)[:200])


def test_operations_without_security_need_no_header(app, client):
    doc = _document(app)
    open_ops = [(path, method, op) for path, method, op in _operations(doc) if op["security"] == [] and "{" not in path]
    assert len(open_ops) >= 6
    for path, method, op in open_ops:
        response = client.open(path, method=method.upper(), **_example_request(doc, path, method, op))
        assert response.status_code not in (401, 403), (path, response.get_data(as_text=True)[:200])
        assert "x-session-id" not in response.get_data(as_text=True).lower(), path


def test_a_generated_python_client_has_typed_operations_and_headers(app, live_api, tmp_path):
    """openapi-python-client builds a client from the document; three endpoints are called with it."""
    import importlib
    import json
    import subprocess
    import sys
    import uuid

    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(_document(app)))
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "openapi-python-client"), "generate", "--path", str(spec), "--meta", "none",
                    "--output-path", str(tmp_path / "aimg_client")], check=True, capture_output=True, timeout=120,
                   env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"})
    sys.path.insert(0, str(tmp_path))
    try:
        client_module = importlib.import_module("aimg_client.client")
        create_user = importlib.import_module("aimg_client.api.user_management.create_user")
        get_self_user = importlib.import_module("aimg_client.api.user_management.get_self_user")
        strong_password = importlib.import_module("aimg_client.api.user_management.generate_strong_password")
        models = importlib.import_module("aimg_client.models")
        import inspect

        assert "x_session_id" in inspect.signature(create_user.sync).parameters
        assert "x_administration_key" in inspect.signature(
            importlib.import_module("aimg_client.api.technical.pg_query").sync).parameters
        client = client_module.Client(base_url=live_api)
        password = strong_password.sync(client=client).payload
        assert isinstance(password, str) and len(password) >= 8
        session = str(uuid.uuid4())
        email = f"client-{session[:8]}@example.com"
        created = create_user.sync(client=client, x_session_id=session,
                                   body=models.CreateUser(email=email, password=password))
        assert created.payload.email == email
        me = get_self_user.sync(client=client, x_session_id=session)
        assert me.payload.is_authenticated is True and me.payload.user_id == created.payload.user_id
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "aimg_client" or m.startswith("aimg_client.")]:
            del sys.modules[name]
