"""Human names of states, actions and roles, through Babel so each screen speaks its language."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

STATES = {
    "draft": _l("Draft"), "submitted": _l("Submitted"), "needs_correction": _l("Needs correction"),
    "under_review": _l("Under review"), "inquiry": _l("Inquiry sent"),
    "awaiting_decision": _l("Awaiting decision"), "approved": _l("Approved"),
    "rejected": _l("Rejected"), "withdrawn": _l("Withdrawn"),
    "finance_review": _l("Finance review"), "closed": _l("Closed"),
    "pending": _l("Not yet paid"), "released": _l("Paid, report due"), "reported": _l("Report filed"),
    "returned": _l("Report returned"), "accepted": _l("Report accepted"),
    "active": _l("Active"), "suspended": _l("Suspended"), "expired": _l("Expired"), "revoked": _l("Revoked"),
}
ACTIONS = {
    "submit": _l("Submit"), "withdraw": _l("Withdraw"), "accept": _l("Accept for review"),
    "return_for_correction": _l("Return for correction"), "resubmit": _l("Resubmit"),
    "send_inquiry": _l("Send an inquiry"), "record_inquiry": _l("Record the inquiry's answer"),
    "recommend_approval": _l("Recommend approval"), "recommend_rejection": _l("Recommend rejection"),
    "approve": _l("Approve"), "reject": _l("Reject"), "send_back": _l("Send back for review"),
    "issue": _l("Permit issued"), "suspend": _l("Suspend"), "reinstate": _l("Reinstate"),
    "revoke": _l("Revoke"), "expire": _l("Expired"), "renew": _l("Renewed"),
    "lapse": _l("Lapsed: correction deadline passed"),
    "propose_amount": _l("Propose the amount"), "release_tranche": _l("Release a tranche"),
    "submit_report": _l("File the spending report"), "accept_report": _l("Accept the spending report"),
    "return_report": _l("Return the spending report"), "close": _l("Close the grant"),
}
# What the comment box asks for, where the action needs one.
COMMENT_PROMPTS = {
    "return_for_correction": _l("What must the applicant correct?"),
    "send_inquiry": _l("Which body is asked, and about what?"),
    "record_inquiry": _l("The answer received"),
    "recommend_rejection": _l("Why reject?"),
    "reject": _l("The reason for rejection"),
    "send_back": _l("What should be reviewed again?"),
    "suspend": _l("The reason for suspension"),
    "revoke": _l("The reason for revocation"),
    "recommend_approval": _l("Why approve? (the expert's opinion)"),
    "return_report": _l("What must be corrected in the report?"),
}
ROLES = {
    "applicant": _l("Applicant"), "intake": _l("Intake clerk"), "expert": _l("Expert"),
    "director": _l("Director"), "finance": _l("Finance"), "auditor": _l("Auditor"), "admin": _l("Administrator"),
    "system": _l("System"),
}
KINDS = {"permit_issuance": _l("Activity permit"), "permit_renewal": _l("Permit renewal"),
         "grant_request": _l("Grant request")}
FIELD_LABELS = {
    "name": _l("Organisation name"), "field": _l("Field of activity"), "county": _l("County"),
    "address": _l("Address"), "founders": _l("Founders"), "statute": _l("Statute (PDF)"),
    "comment": _l("Comment"), "version": _l("Version"), "action": _l("Action"),
    "permit_number": _l("Permit number"), "activity_report": _l("Report of activities"),
    "programme_id": _l("Programme"), "title": _l("Title"), "summary": _l("Summary"),
    "requested_rials": _l("Amount requested"), "budget_lines": _l("Budget lines"),
    "permit": _l("Activity permit"), "reports": _l("Spending reports"), "score": _l("Score"),
    "amount_rials": _l("Amount"), "tranches": _l("Tranches"), "tranche": _l("Tranche"),
    "lines": _l("Spending lines"), "receipts": _l("Receipts"),
}


def label(table: dict[str, object], key: str | None) -> str:
    return str(table.get(key or "", key or ""))


# Kinds of stored documents: uploads, and the letters and certificate a decision issues.
DOCUMENT_KINDS = {
    "statute": _l("Statute (PDF)"), "receipt": _l("Receipt"), "approval_letter": _l("Approval letter"),
    "rejection_letter": _l("Rejection letter"), "certificate": _l("Permit certificate"),
}
# Keys inside an application's lists and an entry's details, as the auditor console shows them.
RECORD_LABELS = {
    "full_name": _l("Full name"), "national_id": _l("National ID"), "item": _l("Item"), "rials": _l("Amount"),
    "budgeted_rials": _l("Amount budgeted"), "spent_rials": _l("Amount spent"), "score": _l("Score"),
    "amount_rials": _l("Amount"), "tranches": _l("Tranches"), "tranche": _l("Tranche"),
    "lines": _l("Spending lines"), "documents": _l("Letters issued"),
}
# The statistics page's figures (workflow/services/statistics.py), as officials name them.
STATISTICS = {
    "permits_issued": _l("Permits issued"),
    "establishments_approved": _l("Establishments approved"),
    "renewals_approved": _l("Renewals approved"),
    "approvals": _l("Approvals of renewal and establishment"),
    "suspensions": _l("Suspensions"),
    "revocations": _l("Revocations"),
    "grants_awarded": _l("Grants awarded"),
    "grants_awarded_rials": _l("Amount of grants awarded"),
    "disbursed_rials": _l("Amount disbursed"),
    "sla_breaches": _l("Steps past their deadline"),
}
