"""the auditor console's counts from its indexes alone: each carries the entry's case id

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 02:50:00

The console counts a search's matches up to a thousand, and only entries of submitted cases
count, so each match is joined to its case. With (province_id, id), (province_id, action, id) and
(province_id, to_state, id) alone, every match meant a visit to the entry's row for its case id:
measured on bench_scale (8.2 million entries) for Kerman's auditor, the unfiltered count took
25 ms, "approvals" 15 ms, "rejected" 10.6 ms. With the case id in the index (INCLUDE), the
counts read the index only: 4.4, 3.5 and 3.7 ms. The same three indexes, each a little wider;
no index is added, so a transition's insert costs what it did.

On PostgreSQL each index is dropped and built again, in the migration's transaction: on that
data set the three took 30 s, during which new entries (every transition) wait, as with 0009:
run it in a quiet hour. SQLite has no INCLUDE: its indexes stay as they are.
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

INDEXES = {
    'ix_audit_entries_province_id_id': ['province_id', 'id'],
    'ix_audit_entries_province_action': ['province_id', 'action', 'id'],
    'ix_audit_entries_province_to_state': ['province_id', 'to_state', 'id'],
}


def _rebuild(include: list[str]) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for name, columns in INDEXES.items():
        op.drop_index(name, table_name='audit_entries')
        op.create_index(name, 'audit_entries', columns, postgresql_include=include)


def upgrade() -> None:
    _rebuild(['case_id'])


def downgrade() -> None:
    _rebuild([])
