"""A real browser for the tests whose user is a browser: Debian's Chromium driven by Playwright.

``./scripts/dev test`` installs Debian's ``chromium`` when it is missing (a browser download
cannot work here); ``AIMG_CHROMIUM`` points at another executable.
"""
from __future__ import annotations

import os
import shutil

import pytest

# Chromium's own background traffic (updates, sync, Google lookups) fails on a closed
# network and slows every start; none of it is what the tests look at.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_executable() -> str:
    path = os.environ.get("AIMG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail(
            "Chromium is needed for the browser tests: run ./scripts/dev test (it installs Debian's "
            "chromium) or set AIMG_CHROMIUM", pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module; pages come from ``browser.new_page()``.

    Not per session: while Playwright's sync API runs, the main thread counts as running an
    event loop, so ``asyncio.run`` (the generation worker's) would fail in later modules."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()
