"""Auditors read; they never change anything.

Checked twice: here, for every request that could write (any method but GET/HEAD/OPTIONS),
whatever route it reaches, so a route added later cannot forget it; and in the engine and the
services (`refuse_auditors`), so a job or command acting for an auditor is refused too. The
few writes that change nothing of the record are allowed: signing out, and a person's own
preferences and read marks.
"""
from __future__ import annotations

from flask import Flask, request
from flask_babel import gettext as _
from flask_login import current_user

from .errors import Forbidden
from .models import User

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PERSONAL = frozenset({"auth.login", "auth.logout", "auth.set_money_unit", "auth.set_language",
                      "notifications.mark_read", "notifications.mark_all_read", "api.token"})


def refuse_auditors(user: User | None) -> None:
    if user is not None and "auditor" in user.roles:
        raise Forbidden(_("Auditors read the record; they cannot change it."))


def check_request(user: User | None) -> None:
    """Refuse a writing request of an auditor (the API calls it once it knows the token's user)."""
    req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, two reads
    if req.method not in SAFE_METHODS and req.endpoint not in PERSONAL:
        refuse_auditors(user)


def register(app: Flask) -> None:
    @app.before_request
    def _auditors_read_only() -> None:
        if request._get_current_object().path.startswith("/api/"):  # type: ignore[attr-defined]
            return  # the API's own before_request knows the bearer's user
        user = current_user._get_current_object() if current_user and current_user.is_authenticated else None
        check_request(user)
