"""An app context for code that runs in an rq worker.

`flask jobs worker` already runs inside one (and forked job processes inherit it); a worker
started some other way gets an app built from the environment, once per process.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from flask import Flask, has_app_context

_app: Flask | None = None


@contextlib.contextmanager
def app_context() -> Iterator[None]:
    global _app
    if has_app_context():
        yield
        return
    if _app is None:
        from workflow import create_app

        _app = create_app()
    with _app.app_context():
        yield
