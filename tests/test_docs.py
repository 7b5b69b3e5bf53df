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
