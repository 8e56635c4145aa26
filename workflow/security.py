"""What every response and every signed-in session carries: security headers, cookie flags, a
fresh session at sign-in, idle and absolute session timeouts, and the client address behind proxies.

Both run on every request, so they do little: the headers are fixed tuples added by a WSGI
middleware, and the timeout check returns at once for requests without a session cookie (the
API, static files).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask, flash, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_login import logout_user
from werkzeug.middleware.proxy_fix import ProxyFix

# Scripts and styles only from our own files: no inline <script>, on*= handler or style=
# attribute exists in templates/ (tests/test_security.py keeps it so), so nothing needs 'unsafe-inline'.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),  # frame-ancestors for browsers that predate CSP 2
    ("Referrer-Policy", "same-origin"),
)
_HEADER_KEYS = tuple((name.lower(), (name, value)) for name, value in HEADERS)
# Where observability.py leaves the request's id for with_headers to echo.
REQUEST_ID = "workflow.request_id"
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
_HSTS_KEY = HSTS[0].lower()

# The last-seen stamp is rewritten at most this often, so an active user's cookie is not
# re-signed and re-sent on every request; the idle timeout is exact to within this.
SEEN_RESOLUTION_SECONDS = 60
KEPT_ACROSS_SIGN_IN = ("lang",)


def clock() -> float:
    """Seconds since the epoch; tests move it to travel in time."""
    return time.time()


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with Secure set whenever the request came over TLS, not
    only when the production config says so (a staging server behind HTTPS, say)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def open_session(self, app: Flask, request: Any) -> Any:
        # No cookie, nothing to verify: Flask would still build its signing serializer first,
        # which is most of the cost for the API's cookieless requests. Saving builds it when a
        # cookie is to be written.
        # Without a Cookie header there is nothing to parse either.
        if app.secret_key and ("HTTP_COOKIE" not in request.environ
                               or not request.cookies.get(self.get_cookie_name(app))):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        # An empty session nobody changed writes no cookie: Flask's own save would work out the
        # cookie's name, domain, path and flags first, and then only add Vary (as here).
        if not session and not session.modified:
            if session.accessed:  # Flask marks every look at `session` (Flask-Login's look at each response)
                if "Vary" in response.headers:
                    response.vary.add("Cookie")
                else:  # the usual case: no Vary yet, nothing to parse and merge (response.vary does)
                    response.headers.add("Vary", "Cookie")
            return
        super().save_session(app, session, response)


def start_session() -> None:
    """A new session at sign-in: nothing from before it survives (session fixation), not even
    the CSRF token, except the language choice."""
    kept = {k: session[k] for k in KEPT_ACROSS_SIGN_IN if k in session}
    session.clear()
    session.update(kept)
    now = int(clock())
    session["signed_in_at"] = now
    session["seen_at"] = now


def end_session() -> None:
    logout_user()
    kept = {k: session[k] for k in KEPT_ACROSS_SIGN_IN if k in session}
    session.clear()
    session.update(kept)


def with_headers(wsgi_app: Callable[..., Any]) -> Callable[..., Any]:
    """WSGI middleware: every response leaves with HEADERS (each only where the response has
    none of that name: a download's own, stricter policy stays), HSTS when the request came over
    TLS, and the request id observability.py gave the request.

    Added to the plain list handed to the server rather than in an after_request hook: werkzeug's
    Headers checks and copies each value it is given, and these are fixed, checked once here.
    Inside ProxyFix (see register), so the scheme is the one the client used.
    """
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _value in headers}
            headers += [header for key, header in _HEADER_KEYS if key not in present]
            if environ.get("wsgi.url_scheme") == "https" and _HSTS_KEY not in present:
                headers.append(HSTS)
            request_id = environ.get(REQUEST_ID)
            if request_id is not None:
                headers.append(("X-Request-ID", request_id))
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start)

    return app


def register(app: Flask) -> None:
    # Headers first, so a ProxyFix added below wraps it and has set the scheme when it runs.
    app.wsgi_app = with_headers(app.wsgi_app)  # type: ignore[method-assign]
    if app.config.get("PROXY_COUNT", 0) > 0:
        hops = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.session_interface = SessionInterface()
    cookie_name = app.config["SESSION_COOKIE_NAME"]
    idle = app.config["SESSION_IDLE_SECONDS"]
    longest = app.config["SESSION_MAX_SECONDS"]

    @app.before_request
    def _expire_session():  # type: ignore[no-untyped-def]
        # The API authenticates by bearer token; a cookie sent along is not what signs it in.
        # No Cookie header (every API call): nothing to look at, and nothing parsed to find that out.
        if "HTTP_COOKIE" not in request._get_current_object().environ or cookie_name not in request.cookies or \
                "_user_id" not in session or request.path.startswith("/api/"):
            return None
        now = clock()
        signed_in_at, seen_at = session.get("signed_in_at"), session.get("seen_at")
        if signed_in_at is None or seen_at is None or now - seen_at > idle or now - signed_in_at > longest:
            end_session()
            flash(_("Your session has expired; please sign in again."), "info")
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("auth.login", next=target))
        if now - seen_at >= SEEN_RESOLUTION_SECONDS:
            session["seen_at"] = int(now)
        return None

