"""the auditor console's action and state filters as ranges of a province's entries

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:00:00

Measured by bench/queues.py on a million cases (8.2 million entries): the console counts the
matches of a filter up to 1,000, newest first. With only (province_id, id), "approvals" or
"rejected" meant reading a province's entries one by one until a thousand matched (p99 up to
250 ms); as ranges of (province_id, action, id) and (province_id, to_state, id) those counts
took 6–10 ms. The kind filter is a case's, and is counted from the cases instead
(services/audit_search.py).

On that data set the two indexes took 44 s to build, during which new entries (every
transition) wait: run it in a quiet hour.
"""
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_audit_entries_province_action', 'audit_entries', ['province_id', 'action', 'id'])
    op.create_index('ix_audit_entries_province_to_state', 'audit_entries', ['province_id', 'to_state', 'id'])


def downgrade() -> None:
    op.drop_index('ix_audit_entries_province_to_state', table_name='audit_entries')
    op.drop_index('ix_audit_entries_province_action', table_name='audit_entries')
