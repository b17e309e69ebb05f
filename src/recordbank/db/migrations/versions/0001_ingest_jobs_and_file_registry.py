"""ingest jobs and file registry

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ingest_jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('file_name', sa.Text(), nullable=False),
    sa.Column('checksum', sa.String(length=64), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('format', sa.String(length=32), nullable=True),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('rows_read', sa.BigInteger(), nullable=False),
    sa.Column('rows_inserted', sa.BigInteger(), nullable=False),
    sa.Column('rows_duplicate', sa.BigInteger(), nullable=False),
    sa.Column('rows_quarantined', sa.BigInteger(), nullable=False),
    sa.Column('mapping_report', sa.JSON(), nullable=True),
    sa.Column('reader_notes', sa.JSON(), nullable=True),
    sa.Column('timings', sa.JSON(), nullable=True),
    sa.Column('stage', sa.String(length=32), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('duplicate_of', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ingest_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_jobs_checksum'), ['checksum'], unique=False)
        batch_op.create_index(batch_op.f('ix_ingest_jobs_source'), ['source'], unique=False)
        batch_op.create_index(batch_op.f('ix_ingest_jobs_status'), ['status'], unique=False)

    op.create_table('ingested_files',
    sa.Column('checksum', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('job_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['ingest_jobs.id'], ),
    sa.PrimaryKeyConstraint('checksum')
    )


def downgrade() -> None:
    op.drop_table('ingested_files')
    with op.batch_alter_table('ingest_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_jobs_status'))
        batch_op.drop_index(batch_op.f('ix_ingest_jobs_source'))
        batch_op.drop_index(batch_op.f('ix_ingest_jobs_checksum'))

    op.drop_table('ingest_jobs')
