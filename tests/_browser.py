"""Headless Chromium for the browser tests: find it, and open pages with the network blocked.

Only a Chromium installed on the machine is used (Debian: ``apt-get install chromium``; or set
``CARECHECK_CHROMIUM`` to its path); nothing is downloaded. Every request that is not for a
local file is aborted and recorded, so a page that needs the network shows up in the test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}


def find_chromium() -> str | None:
    """The path of an installed Chromium, or None."""
    configured = os.environ.get("CARECHECK_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def chromium_context() -> Iterator[Any]:
    """A Playwright browser context of the installed Chromium, with a fresh profile."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    assert executable is not None, "no Chromium installed"
    profile = tempfile.mkdtemp(prefix="carecheck-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=VIEWPORT,
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class PageLog:
    """What a page did: JavaScript errors, blocked and local requests, dialogs opened."""

    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    load_s: float = 0.0


def open_page(
    context: Any,
    path: Path,
    *,
    serve: Callable[[str], str | None] | None = None,
    ready: str = ".leaflet-container",
) -> tuple[Any, PageLog]:
    """Open the local file ``path``; non-file requests are aborted unless ``serve`` answers.

    ``serve(url)`` may return the body to answer a request with (for example a CDN file from
    a local copy); other requests that are not for ``file:`` URLs are aborted and recorded in
    ``PageLog.blocked``. Console errors, uncaught exceptions and dialogs (``alert``) are
    recorded too; dialogs are dismissed.
    """
    page = context.new_page()
    page.set_default_timeout(10_000)
    log = PageLog()

    def route(route: Any) -> None:
        url = route.request.url
        log.requests.append(url)
        if url.startswith("file:"):
            route.continue_()
            return
        body = serve(url) if serve is not None else None
        if body is None:
            log.blocked.append(url)
            route.abort()
            return
        kind = "text/css" if url.endswith(".css") else "application/javascript"
        route.fulfill(status=200, body=body, content_type=f"{kind}; charset=utf-8")

    def dialog(dialog: Any) -> None:
        log.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.route("**/*", route)
    page.on("console", lambda m: log.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: log.errors.append(str(exc)))
    page.on("dialog", dialog)
    started = time.perf_counter()
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_selector(ready)
    log.load_s = time.perf_counter() - started
    return page, log
