"""statistics pages computed ahead of time, one row per (Jalali year, province or the country)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 23:10:00

Measured by bench/queues.py on a million cases: the statistics page took 5.5 s (median) for a
province and 18.6 s for the whole country, almost all of it the working days of two years of
steps. jobs/statistics.py now computes the pages every hour and the page reads its row.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import workflow.models.types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'statistics_reports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=12), nullable=False),
        sa.Column('computed_at', workflow.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                  nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_statistics_reports')),
        sa.UniqueConstraint('year', 'scope', name=op.f('uq_statistics_reports_year_scope')),
    )


def downgrade() -> None:
    op.drop_table('statistics_reports')
