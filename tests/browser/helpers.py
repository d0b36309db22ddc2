"""A real browser for the tests: Debian's Chromium driven by Playwright, and servers for it to visit.

Chromium is the system package (`scripts/with-services.sh` installs it), never Playwright's own
download: `playwright install` needs the internet, and CI has none. Playwright's async API, on the
suite's session event loop: its sync API marks the thread's loop as running while a browser is
open, which breaks every pytest-asyncio test and fixture that runs meanwhile. The servers run in
threads of their own, so a test awaiting the browser never stalls the app under test.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Playwright

CHROMIUM = Path("/usr/bin/chromium")
# /usr/bin/chromium's own /dev/shm check misfires in containers; as root it needs --no-sandbox.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]

# Context options: a laptop screen, and a phone (CSS pixels; the screenshot is 3× as wide).
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
# Every context may write and read the clipboard (a page's copy buttons are checked by reading it).
PERMISSIONS = ["clipboard-read", "clipboard-write"]


def chromium_path() -> str:
    """The Debian package's Chromium; fails the test with what to do if it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, which installs Debian's chromium package")
    return str(CHROMIUM)


async def launch_chromium(playwright: Playwright) -> Browser:
    """Headless Chromium from the Debian package."""
    return await playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve a folder's files on a free loopback port in a thread; yields the base URL (no slash)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="serve-folder", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join()


@contextmanager
def serve_asgi(app: Any, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in a thread; yields the base URL."""
    import uvicorn  # the web app's dependency; only its tests call this

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="serve-asgi", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start (its log above says why)")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
