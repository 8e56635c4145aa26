"""URLs of a list's rows: one url_for per request and endpoint, each row's ids put in their places.

url_for walks werkzeug's routing map on every call; a list of fifty rows asks it for the same
endpoint fifty times (twice per row on the auditor console), only the ids changing. It was a
fifth of a queue page's rendering. The URL is built once with stand-in ids and kept for the
request, as a format string.
"""
from __future__ import annotations

from flask import g, url_for

_PROBE = 918273645  # stand-in ids (this, +1, ...): numbers no other part of a URL could contain


def row_url(endpoint: str, **ids: int) -> str:
    """url_for(endpoint, **ids) for whole-number ids, as url_for would build it."""
    templates = g.get("_row_urls")
    if templates is None:
        templates = g._row_urls = {}
    key = (endpoint, *ids)
    template = templates.get(key)
    if template is None:
        url = url_for(endpoint, **{name: _PROBE + i for i, name in enumerate(ids)})
        template = url.replace("{", "{{").replace("}", "}}")
        for i, name in enumerate(ids):
            template = template.replace(str(_PROBE + i), "{" + name + "}")
        templates[key] = template
    return template.format_map({name: int(value) for name, value in ids.items()})
