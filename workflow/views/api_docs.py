"""GET /api/v1/openapi.json: the API's contract, public and cacheable like a static file.

A blueprint of its own, so the API's bearer-token check (api.bp's before_request) does not
apply: clients and tools read the document before they hold a token.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from ..openapi import document

bp = Blueprint("api_docs", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    body = current_app.extensions.get("openapi_json")
    if body is None:
        body = current_app.extensions["openapi_json"] = json.dumps(
            document(current_app), ensure_ascii=False, sort_keys=True).encode()
    response = Response(body, mimetype="application/json")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    response.add_etag()
    return response.make_conditional(request)
