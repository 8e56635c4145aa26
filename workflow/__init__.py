"""The application factory.

`create_app` is a list of small register_* steps, so a test can build an app against its own
database and Redis, and the worker can build one without the web parts mattering.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, g

from .config import INSTANCE, Config
from .json_codec import JSONProvider


class WorkflowFlask(Flask):
    """Flask, remembering its answer to "is this handler a coroutine?". Flask asks it, through
    `inspect.iscoroutinefunction`, of every hook and the view on every request (eleven times for
    an API call here), and the answer for a given function never changes. Its JSON goes through
    orjson (json_codec)."""

    json_provider_class = JSONProvider

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._synced[func]
        except KeyError:
            synced = self._synced[func] = super().ensure_sync(func)
            return synced
        except TypeError:  # an unhashable callable: ask every time, as Flask does
            return super().ensure_sync(func)


def create_app(config: Config | None = None, **overrides: Any) -> Flask:
    app = WorkflowFlask(
        __name__,
        instance_path=str(INSTANCE),
        template_folder="../templates",
        static_folder="static",
    )
    cfg = config or Config()
    for key, value in overrides.items():
        setattr(cfg, key, value)
    app.config.from_object(cfg)
    register_observability(app)  # first: logging, and the request hooks that wrap all others
    # Both libraries narrate every step at INFO; our own log lines are the ones operators need.
    for noisy in ("transitions", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    register_extensions(app)
    register_replica(app)
    register_health(app)
    register_converters(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_cli(app)
    register_security(app)
    return app


def warm_up(app: Flask) -> None:
    """Do before the first request what a worker's first requests would each pay once: compile the
    work queue's templates and its SQL statements for every common kind of user (queues.precompile:
    a director's first page compiled its statements for 5-15 ms, its template for ~25 ms). Nothing
    is read from the database. wsgi.py calls it in each web worker; a failure here is logged and the
    worker serves all the same (each first request then compiles what it needs, as before)."""
    import time

    from .services import queues

    started = time.perf_counter()
    try:
        for name in ("base.html", "queues/queue.html"):
            app.jinja_env.get_template(name)
        count = queues.precompile(app.extensions["db_engine"])
    except Exception:  # noqa: BLE001 - an optimisation; never a reason not to serve
        logging.getLogger(__name__).exception("warm-up failed; first requests will compile what they need")
        return
    logging.getLogger(__name__).info("warm-up: %d queue statements and the queue templates compiled in %.0f ms",
                                     count, (time.perf_counter() - started) * 1000)


def register_observability(app: Flask) -> None:
    from . import observability

    observability.register(app)


def register_replica(app: Flask) -> None:
    from . import replica

    replica.register(app)


def register_health(app: Flask) -> None:
    from . import health

    health.register(app)


def register_extensions(app: Flask) -> None:
    from jobs import queue

    from . import db, i18n, uploads
    from .extensions import babel, csrf, login_manager

    db.init_app(app)
    uploads.init_app(app)
    queue.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, default_timezone="Asia/Tehran")
    i18n.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None

    @login_manager.user_loader
    def _load_user(user_id: str) -> Any:
        if not user_id.isdigit():
            return None
        from .services.accounts import load_signed_in_user

        user, unread = load_signed_in_user(db.session(), int(user_id))
        if user is not None:
            g.unread_notifications = unread  # the header's bell: see views/notifications.unread_count
        return user


def register_converters(app: Flask) -> None:
    """`<int:…>` in every route only matches numbers an INTEGER id column can hold: a larger
    one is a 404 like any other unknown id, never a database error."""
    from werkzeug.routing import IntegerConverter

    from .db import MAX_ID, ROW_ID_PATTERN

    class RowId(IntegerConverter):
        regex = ROW_ID_PATTERN  # past MAX_ID no rule matches: a 404 whatever the method

        def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("max", MAX_ID)
            super().__init__(map, *args, **kwargs)

    app.url_map.converters["int"] = RowId


def register_blueprints(app: Flask) -> None:
    from .views import (  # noqa: F401 (permits_api, grants_api: routes on api.bp)
        admin, api, auth, cases, grants_api, notifications, permits_api, portal, programmes, public, queues,
    )
    from .views import audit
    from .extensions import csrf

    app.register_blueprint(auth.bp)
    app.register_blueprint(portal.bp)
    app.register_blueprint(queues.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(programmes.bp)
    app.register_blueprint(audit.bp)
    from .views import statistics  # the statistics page and its CSV

    app.register_blueprint(statistics.bp)
    from .views import api_docs  # GET /api/v1/openapi.json, public

    app.register_blueprint(api_docs.bp)
    # The API authenticates every call with a bearer token, not a cookie, so CSRF cannot apply.
    csrf.exempt(api.bp)
    # Two extensions' hooks run on every request and have nothing to do in the API's: Flask-WTF's
    # check works out from six lookups that the blueprint is exempt, Flask-Login's remember-me
    # cookie belongs to sign-in by form. Asked of the blueprint first, they are skipped there.
    from flask_login import LoginManager

    _skip_in_api(app.before_request_funcs[None], lambda hook: getattr(hook, "__module__", "") == "flask_wtf.csrf")
    _skip_in_api(app.after_request_funcs[None], lambda hook: isinstance(getattr(hook, "__self__", None), LoginManager)
                 and hook.__name__ == "_update_remember_cookie")


def _skip_in_api(hooks: list[Any], is_it: Callable[[Any], bool]) -> None:
    """Wrap the one hook among `hooks` that `is_it` so it does not run in the API blueprint's
    requests (an after-request hook hands the response on untouched)."""
    from flask import request

    for i, hook in enumerate(hooks):
        if is_it(hook):
            def skipping(*response: Any, _hook: Any = hook) -> Any:
                if request._get_current_object().blueprint == "api":  # type: ignore[attr-defined]
                    return response[0] if response else None
                return _hook(*response)

            hooks[i] = skipping
            return
    raise RuntimeError("an extension's request hook was not found; was it upgraded?")


def register_errorhandlers(app: Flask) -> None:
    from . import read_only
    from .views import errors

    errors.register(app)
    read_only.register(app)


def register_security(app: Flask) -> None:
    """Headers, cookie flags, session timeouts and the proxy count (security.py); the sign-in
    throttle (throttle.py) wraps the sign-in views, so it comes after the blueprints."""
    from . import security, throttle

    security.register(app)
    throttle.init_app(app)


def register_cli(app: Flask) -> None:
    from . import cli

    cli.register(app)
