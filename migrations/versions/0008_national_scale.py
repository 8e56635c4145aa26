"""indexes for a whole country: queues, the auditors' lists, the console; entries know their province

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 17:00:00

Measured by bench/queues.py on a million cases (workflow/bench_populate.py):
  * a queue is a merge of (kind, state) lists, each a range of one of three indexes in queue
    order: by province, by county (county offices), nationally (staff without a province);
  * the auditors' list of cases, newest first: by province, by province and state, by state;
  * the auditor console lists audit entries of a province newest first, a period's by (at, id):
    the entry carries its
    case's province (a case never changes province once it has history), filled by the engine
    and, for any other writer, by a trigger on PostgreSQL;
  * the queue's separation-of-duties test ("did this user recommend on the case?") and the
    director's exclusion list read (actor, action, case) from the index alone;
  * the admins' list of failed deliveries, newest first, without reading delivered rows.
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

FILL_PROVINCE = """
CREATE FUNCTION audit_entry_province() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.province_id IS NULL THEN
        SELECT province_id INTO NEW.province_id FROM cases WHERE id = NEW.case_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_entries_province BEFORE INSERT ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entry_province();
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index('ix_cases_queue', table_name='cases')
    op.create_index('ix_cases_queue', 'cases', ['province_id', 'kind', 'state', 'state_entered_at', 'id'])
    op.create_index('ix_cases_queue_county', 'cases', ['county_id', 'kind', 'state', 'state_entered_at', 'id'],
                    postgresql_where=sa.text('county_id IS NOT NULL'), sqlite_where=sa.text('county_id IS NOT NULL'))
    op.create_index('ix_cases_queue_national', 'cases', ['kind', 'state', 'state_entered_at', 'id'])
    op.create_index('ix_cases_province_id_id', 'cases', ['province_id', 'id'])
    op.create_index('ix_cases_province_state_id', 'cases', ['province_id', 'state', 'id'])
    op.create_index('ix_cases_state_id', 'cases', ['state', 'id'])

    op.add_column('audit_entries', sa.Column('province_id', sa.Integer(), nullable=True))
    backfill = ("UPDATE audit_entries SET province_id = "
                "(SELECT c.province_id FROM cases c WHERE c.id = audit_entries.case_id)")
    if postgres:
        # The history is append-only (0006); this fills a new index column, not the history.
        op.execute("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only")
        op.execute("UPDATE audit_entries e SET province_id = c.province_id FROM cases c WHERE c.id = e.case_id")
        op.execute("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only")
        op.execute(FILL_PROVINCE)
    else:
        op.execute(backfill)
    op.create_index('ix_audit_entries_province_id_id', 'audit_entries', ['province_id', 'id'])
    op.create_index('ix_audit_entries_province_at', 'audit_entries', ['province_id', 'at', 'id'])
    op.drop_index('ix_audit_entries_at', table_name='audit_entries')
    op.create_index('ix_audit_entries_at', 'audit_entries', ['at', 'id'])
    op.drop_index('ix_audit_entries_actor_id', table_name='audit_entries')
    op.create_index('ix_audit_entries_actor_id', 'audit_entries', ['actor_id', 'action', 'case_id'])
    op.create_index('ix_notifications_failed', 'notifications', ['failed_at', 'id'],
                    postgresql_where=sa.text('failed_at IS NOT NULL'), sqlite_where=sa.text('failed_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_notifications_failed', table_name='notifications')
    op.drop_index('ix_audit_entries_actor_id', table_name='audit_entries')
    op.create_index('ix_audit_entries_actor_id', 'audit_entries', ['actor_id'])
    op.drop_index('ix_audit_entries_at', table_name='audit_entries')
    op.create_index('ix_audit_entries_at', 'audit_entries', ['at'])
    op.drop_index('ix_audit_entries_province_at', table_name='audit_entries')
    op.drop_index('ix_audit_entries_province_id_id', table_name='audit_entries')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entries_province ON audit_entries")
        op.execute("DROP FUNCTION audit_entry_province()")
    with op.batch_alter_table('audit_entries') as batch:
        batch.drop_column('province_id')
    for name in ('ix_cases_state_id', 'ix_cases_province_state_id', 'ix_cases_province_id_id',
                 'ix_cases_queue_national', 'ix_cases_queue_county', 'ix_cases_queue'):
        op.drop_index(name, table_name='cases')
    op.create_index('ix_cases_queue', 'cases', ['province_id', 'state', 'state_entered_at', 'id'])
