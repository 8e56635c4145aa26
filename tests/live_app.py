"""Serve a test's Flask app over real HTTP on a free loopback port, for browser tests.

    with LiveApp(app) as live:
        page.goto(live.url("/login"))

The app (and so its database, Redis and upload directory) is the very one the test's fixtures
built, so a test can arrange data with `world` and check results with `session` while a browser
drives the pages. Werkzeug's threaded server runs in a daemon thread; leaving the block shuts it
down and waits for the thread.
"""
from __future__ import annotations

import threading
import urllib.request
from types import TracebackType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

HOST = "127.0.0.1"


class LiveApp:
    def __init__(self, app: Flask, host: str = HOST) -> None:
        self.app = app
        self.host = host
        self.server: BaseWSGIServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        assert self.server is not None, "the server is not running"
        return f"http://{self.host}:{self.server.server_port}"

    def url(self, path: str = "/") -> str:
        return self.base + path

    def start(self) -> LiveApp:
        # Port 0: the kernel picks a free port, so parallel runs never collide.
        self.server = make_server(self.host, 0, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="live-app", daemon=True)
        self.thread.start()
        with urllib.request.urlopen(self.url("/login"), timeout=10) as response:  # noqa: S310 - loopback
            assert response.status == 200, response.status
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.server = self.thread = None

    def __enter__(self) -> LiveApp:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
