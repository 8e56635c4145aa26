"""The review path every application shares: applicant → intake → expert → director.

Issuance, renewal and grant requests differ in their data and their effects, and a grant adds
a finance step before the decision; who submits, checks and decides is the same, so they build
their rule tables from here and a change to the path is made once.
"""
from __future__ import annotations

from ..process import Rule, Validator


def intake_rules(complete: Validator) -> tuple[Rule, ...]:
    """From the draft to the expert's desk, the correction loop, and the applicant's way out."""
    return (
        Rule("submit", "draft", "submitted", "applicant", validate=complete),
        Rule("withdraw", "draft", "withdrawn", "applicant"),
        Rule("withdraw", "submitted", "withdrawn", "applicant"),
        Rule("withdraw", "needs_correction", "withdrawn", "applicant"),
        Rule("accept", "submitted", "under_review", "intake"),
        Rule("return_for_correction", "submitted", "needs_correction", "intake", comment_required=True),
        Rule("return_for_correction", "under_review", "needs_correction", "expert", comment_required=True),
        Rule("resubmit", "needs_correction", "submitted", "applicant", validate=complete),
        # The correction deadline passed: the system withdraws the application.
        Rule("lapse", "needs_correction", "withdrawn", "system"),
    )


# The director's decision on a recommended case (never by whoever recommended it).
DECISION_RULES = (
    Rule("approve", "awaiting_decision", "approved", "director", decides=True),
    Rule("reject", "awaiting_decision", "rejected", "director", comment_required=True, decides=True),
    Rule("send_back", "awaiting_decision", "under_review", "director", comment_required=True, decides=True),
)


def review_rules(complete: Validator) -> tuple[Rule, ...]:
    return intake_rules(complete) + (
        Rule("recommend_approval", "under_review", "awaiting_decision", "expert", recommends=True),
        Rule("recommend_rejection", "under_review", "awaiting_decision", "expert",
             comment_required=True, recommends=True),
    ) + DECISION_RULES


REVIEW_STATES = (
    "draft", "submitted", "needs_correction", "under_review", "awaiting_decision",
    "approved", "rejected", "withdrawn",
)
TERMINAL = frozenset({"approved", "rejected", "withdrawn"})
