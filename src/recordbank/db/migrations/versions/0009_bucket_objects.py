"""objects seen in a watched S3-compatible bucket

One row per (bucket, key): the ETag and size last downloaded, the checksum of those bytes and
the job they made, so a restarted watcher does not download them again; and the claims that
keep two watchers of one bucket from downloading the same object version both.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'bucket_objects',
        sa.Column('id', PK, autoincrement=True, primary_key=True),
        sa.Column('bucket', sa.String(255), nullable=False),
        sa.Column('key', sa.String(1024), nullable=False),
        sa.Column('etag', sa.String(200), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('checksum', sa.String(64), nullable=False),
        sa.Column('job_id', sa.BigInteger(), nullable=True),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('bucket', 'key', name='uq_bucket_objects_key'),
    )
    op.create_table(
        'bucket_claims',
        sa.Column('id', PK, autoincrement=True, primary_key=True),
        sa.Column('bucket', sa.String(255), nullable=False),
        sa.Column('key', sa.String(1024), nullable=False),
        sa.Column('etag', sa.String(200), nullable=False),
        sa.Column('owner', sa.String(200), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('bucket', 'key', 'etag', name='uq_bucket_claims_object'),
    )


def downgrade() -> None:
    op.drop_table('bucket_claims')
    op.drop_table('bucket_objects')
