"""Sign-in throttling: at most LOGIN_MAX_FAILURES failed sign-ins per window, per account and per
client address, over the sign-in form and the API's token route together.

Only failures count (the views call `record_failure`; Flask-Limiter deducts after the response),
but once a bucket is full every attempt is refused before the password is looked at, the right
one included: otherwise the refusal itself would tell a guesser when they had found it. The
counters live in the app's Redis so every web worker shares them; without Redis (tests, a bare
script) each process counts in memory.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

from flask import Flask, current_app, g, render_template, request
from flask.globals import request_ctx
from flask_babel import gettext as _
from flask_limiter import Limiter, RateLimitExceeded

from .services.accounts import normalize_email

log = logging.getLogger(__name__)

# Where Flask-Limiter (pinned in setup.cfg) keeps a request's state, on the request context.
_LIMITER_STATE = "_limiter_request_context"
# Endpoints that take a password; both views call record_failure on a failed sign-in.
SIGN_IN_ENDPOINTS = ("auth.login", "api.token")


def storage_uri(redis_url: str) -> str:
    """The limiter's storage for REDIS_URL: the embedded Redis of `flask serve` is a unix socket,
    which the `limits` library spells redis+unix://."""
    if not redis_url:
        return "memory://"
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url


def client_address() -> str:
    """The caller's address; behind PROXY_COUNT proxies ProxyFix has already put the real one here."""
    return request.remote_addr or "unknown"


def account_key() -> str:
    """The account named in the attempt, normalised as sign-in looks it up, and hashed so that
    Redis holds no addresses."""
    if request.blueprint == "api":  # the token route reads its body as JSON whatever the content type
        data = request.get_json(force=True, silent=True)
        email = data.get("email") if isinstance(data, dict) else None
    else:
        email = request.form.get("email")
    normal = normalize_email(email if isinstance(email, str) else "")
    return hashlib.sha256(normal.encode()).hexdigest()[:32]


def record_failure() -> None:
    """Count this request against its account and address (wrong password, unknown or inactive account)."""
    g.sign_in_failed = True


def _failed(_response: object) -> bool:
    return bool(g.get("sign_in_failed"))


def _not_a_post() -> bool:
    return request.method != "POST"


def init_app(app: Flask) -> None:
    limit = f"{app.config['LOGIN_MAX_FAILURES']} per {app.config['LOGIN_FAILURE_WINDOW_SECONDS']} seconds"
    # One limiter per app (not a module global): tests build many apps, each on its own Redis db.
    limiter = Limiter(
        client_address, app=app, storage_uri=storage_uri(app.config.get("REDIS_URL", "")),
        strategy="moving-window", key_prefix="sign-in",
        # Redis down or unreachable: sign-in goes on unthrottled (and it is logged) within a
        # second or two, rather than hanging or failing with a 500.
        swallow_errors=True, storage_options={"socket_connect_timeout": 2, "socket_timeout": 2},
    )
    app.extensions["sign_in_limiter"] = limiter
    # Flask-Limiter also runs a check before every request, for app-wide and default limits. There
    # are none here (the wrapped sign-in views check their own limits), and that check costs tens
    # of microseconds on every request of the hot path. Its after-request hook stays: it counts
    # the failures.
    app.before_request_funcs[None].remove(limiter._check_request_limit)
    # Its after-request and teardown hooks have work only in a request whose limits it checked
    # (the wrapped sign-in views), where it keeps its per-request state on the request context.
    # Everywhere else they would find that state empty, after creating it; skip them there.
    _only_where_checked(app.after_request_funcs[None], limiter)
    _only_where_checked(app.teardown_request_funcs[None], limiter)
    # Shared scopes: the form and the API fill the same buckets, so switching doubles nothing.
    per_account = limiter.shared_limit(limit, scope="account", key_func=account_key,
                                       deduct_when=_failed, exempt_when=_not_a_post)
    per_address = limiter.shared_limit(limit, scope="address", key_func=client_address,
                                       deduct_when=_failed, exempt_when=_not_a_post)
    for endpoint in SIGN_IN_ENDPOINTS:
        app.view_functions[endpoint] = per_address(per_account(app.view_functions[endpoint]))
    app.register_error_handler(RateLimitExceeded, _refuse)


def _only_where_checked(hooks: list[Any], limiter: Limiter) -> None:
    """Wrap the limiter's hook among `hooks` so it runs only once the limiter has state in this request."""
    for i, hook in enumerate(hooks):
        if getattr(hook, "__self__", None) is limiter or limiter in getattr(hook, "args", ()):
            def guarded(arg: Any, _hook: Any = hook) -> Any:
                if hasattr(request_ctx._get_current_object(), _LIMITER_STATE):
                    return _hook(arg)
                return arg

            hooks[i] = guarded
            return
    raise RuntimeError("Flask-Limiter's request hook was not found; was it upgraded?")


def _retry_after(limiter: Limiter) -> int:
    current = limiter.current_limit
    try:
        reset_at = current.reset_at if current else None
    except Exception:  # noqa: BLE001 - storage gone between the check and now
        reset_at = None
    if reset_at is None:
        return current_app.config["LOGIN_FAILURE_WINDOW_SECONDS"]
    return max(1, math.ceil(reset_at - time.time()))


def _refuse(_exc: RateLimitExceeded):  # type: ignore[no-untyped-def]
    from forms.auth import LoginForm

    from .i18n import digits
    from .views.errors import json_error

    seconds = _retry_after(current_app.extensions["sign_in_limiter"])
    minutes = max(1, math.ceil(seconds / 60))
    log.warning("sign-in refused: too many failures (%s %s)", request.endpoint, client_address())
    message = _("Too many failed sign-in attempts for this account or from this address. "
                "Try again in %(minutes)s minutes.", minutes=digits(minutes))
    if request.blueprint == "api":
        response, status = json_error(429, message, code="too_many_attempts")
    else:
        form = LoginForm()
        form.password.errors = [message]
        response, status = current_app.make_response(render_template("auth/login.html", form=form)), 429
    response.status_code = status
    response.headers["Retry-After"] = str(seconds)
    return response
