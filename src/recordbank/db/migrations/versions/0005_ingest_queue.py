"""ingest queue: leases, retries, cancellation and live progress on ingest_jobs

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('ingest_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(32), nullable=True))
        batch_op.add_column(sa.Column('lease_owner', sa.String(200), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', TS, nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', TS, nullable=True))
        batch_op.add_column(sa.Column('max_attempts', sa.Integer(), nullable=False,
                                      server_default='5'))
        batch_op.add_column(sa.Column('cancel_requested', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('progress', sa.JSON(), nullable=True))
        batch_op.create_index('ix_ingest_jobs_status_next', ['status', 'next_attempt_at'])


def downgrade() -> None:
    with op.batch_alter_table('ingest_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_ingest_jobs_status_next')
        for name in ('progress', 'cancel_requested', 'max_attempts', 'next_attempt_at',
                     'lease_expires_at', 'lease_owner', 'origin'):
            batch_op.drop_column(name)
