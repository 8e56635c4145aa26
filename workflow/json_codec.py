"""JSON in and out of the app's hot paths: orjson where it can, the standard library where it cannot.

A queue page of the API decodes about a hundred JSON documents from PostgreSQL (each case's data,
each grant's proposed tranches) and encodes the page: with the standard library that was an eighth
of the page's Python. orjson does both in native code. It is stricter than the standard library
(no integers past 64 bits, no NaN, no lone surrogates, no keys other than strings), so whatever it
refuses goes to the standard library, which answers exactly as it did before: the output of the
app does not depend on which of the two did the work, only its speed does.
"""
from __future__ import annotations

import json
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

# Sorted keys, as Flask's own provider writes them (responses stay byte-for-byte comparable across
# runs); dates, dataclasses and subclasses of str/int/dict/list are handed to Flask's `default`
# (orjson would write dates as RFC 3339 where Flask writes HTTP dates, and a str subclass such as
# Markup must keep its own rules).
_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_SUBCLASS)


# Nineteen digits in a row: a number that may not fit 64 bits, which orjson would read as a float
# (losing digits) where the standard library reads an int. Text with such a run (a long number in
# a string, too) is left to the standard library. Found as a substring once every digit reads
# "0": a regular expression restarted its count at each digit of every run (a case's data has
# a run of ten per founder's national ID), several times slower.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def _has_long_run(raw: bytes | str) -> bool:
    # UTF-8 writes only ASCII digits with the bytes of digits; "surrogatepass": text that orjson
    # refuses still gets looked at, and then read by the standard library.
    text = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    return _LONG_RUN in text.translate(_DIGITS_AS_ZERO)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON text as json.loads would: what PostgreSQL sends for a json/jsonb column (the
    engine's json_deserializer)."""
    raw = data if isinstance(data, (bytes, str)) else bytes(data)
    if not _has_long_run(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:  # NaN, a lone surrogate: what json reads and orjson does not
            pass
    return json.loads(raw)


class JSONProvider(DefaultJSONProvider):
    """Flask's provider, with orjson writing the bodies of `jsonify` and `app.json.dumps`.

    Output differs from Flask's only in that text outside ASCII is written as UTF-8 rather than as
    \\u escapes (the same JSON: a client's parser reads the same strings), which also makes
    Persian bodies about a third smaller. In debug mode (indented bodies) Flask's own path runs.
    """

    ensure_ascii = False  # the standard library's fallback writes what orjson writes

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:
            return super().dumps(obj, **kwargs)
        return self._encode(obj).decode()

    def response(self, *args: Any, **kwargs: Any) -> Any:
        obj = self._prepare_response_obj(args, kwargs)
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(obj)
        return self._app.response_class(self._encode(obj) + b"\n", mimetype=self.mimetype)

    def _encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self.default, option=_OPTIONS)
        except orjson.JSONEncodeError:  # an integer key, a big integer, a type only `default` rejects
            return super().dumps(obj).encode()
