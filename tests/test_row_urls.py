"""row_url builds a list's links once per request and fills in each row's ids: every link must be
the one url_for gives, under any script root, and nothing but a whole number may go in."""
from __future__ import annotations

from typing import Any

import pytest
from flask import url_for

from workflow.views.row_urls import row_url

CASES = [
    ("cases.show", {"case_id": 7}),
    ("cases.show", {"case_id": 2_147_483_647}),
    ("audit.timeline", {"case_id": 918273645}),   # the stand-in id itself
    ("audit.snapshot", {"case_id": 12, "seq": 3}),
    ("audit.snapshot", {"seq": 3, "case_id": 12}),  # keyword order does not matter
    ("audit.snapshot", {"case_id": 918273646, "seq": 918273645}),
]


@pytest.mark.parametrize("script_root", ["", "/permits", "/{odd}"])
def test_row_urls_are_url_for(app: Any, script_root: str) -> None:
    with app.test_request_context("/", base_url=f"http://localhost{script_root}"):
        for endpoint, ids in CASES * 2:  # the second time from the request's kept template
            assert row_url(endpoint, **ids) == url_for(endpoint, **ids), (endpoint, ids)


def test_ids_must_be_whole_numbers(app: Any) -> None:
    with app.test_request_context("/"):
        assert row_url("cases.show", case_id="42") == url_for("cases.show", case_id=42)
        with pytest.raises(ValueError):
            row_url("cases.show", case_id="42/../../admin")

