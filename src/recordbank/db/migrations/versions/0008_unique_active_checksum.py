"""one queued-or-running ingest job per content checksum

A partial unique index on ingest_jobs(checksum) WHERE status IN ('queued', 'running'): two
uploads of the same content at the same moment can no longer both queue a job (the second
insert fails and the queue answers "already-queued" with the first job). Finished jobs
(succeeded, failed, cancelled) keep any number of rows per checksum.

Rows that would break the index (the race this closes may already have happened) are ended
first: of the active jobs sharing a checksum the oldest stays, the others are cancelled with
a note naming it.

Revision ID: 0008
Revises: 0007
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ACTIVE = "status IN ('queued', 'running')"


def upgrade() -> None:
    cancel = sa.text(
        "UPDATE ingest_jobs SET status = 'cancelled', stage = 'cancelled', "
        "cancel_requested = :yes, lease_owner = NULL, lease_expires_at = NULL, "
        "finished_at = :at, error_code = 'superseded', "
        "error = 'cancelled by migration 0008: an older job with the same content is active' "
        "WHERE status IN ('queued', 'running') AND checksum IS NOT NULL AND EXISTS ("
        "SELECT 1 FROM ingest_jobs older WHERE older.checksum = ingest_jobs.checksum "
        "AND older.status IN ('queued', 'running') AND older.id < ingest_jobs.id)"
    ).bindparams(sa.bindparam('at', type_=TS), sa.bindparam('yes', type_=sa.Boolean()))
    op.get_bind().execute(cancel, {'at': datetime.now(UTC), 'yes': True})
    op.create_index('uq_ingest_jobs_active_checksum', 'ingest_jobs', ['checksum'], unique=True,
                    sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))


def downgrade() -> None:
    op.drop_index('uq_ingest_jobs_active_checksum', table_name='ingest_jobs')
