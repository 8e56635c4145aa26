"""Pages anyone may open without signing in: permit verification."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from sqlalchemy import select

from .. import db, labels
from ..models import Permit
from ..text import ascii_digits

bp = Blueprint("public", __name__)


@bp.get("/verify")
def verify():  # type: ignore[no-untyped-def]
    number = ascii_digits(request.args.get("number", "")).strip()
    if number:
        return redirect(url_for("public.permit", number=number))
    return render_template("public/verify.html", permit=None, number="", labels=labels)


@bp.get("/permits/<number>")
def permit(number: str):  # type: ignore[no-untyped-def]
    number = ascii_digits(number).strip()
    found = db.session().scalar(select(Permit).where(Permit.number == number))
    return render_template("public/verify.html", permit=found, number=number, labels=labels), \
        200 if found else 404
