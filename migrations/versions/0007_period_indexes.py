"""indexes for questions about a period: audit entries and permit events by time, permits by province

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:40:00
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_audit_entries_at', 'audit_entries', ['at'], unique=False)
    op.create_index('ix_permit_events_at', 'permit_events', ['at'], unique=False)
    op.create_index('ix_permits_province_id', 'permits', ['province_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_permits_province_id', table_name='permits')
    op.drop_index('ix_permit_events_at', table_name='permit_events')
    op.drop_index('ix_audit_entries_at', table_name='audit_entries')
