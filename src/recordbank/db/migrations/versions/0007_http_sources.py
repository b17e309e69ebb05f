"""scheduled HTTP JSON sources

One row per source: where to fetch, how to page, its (never shown) secret header, its
schedule, and the outcome of its last run.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'http_sources',
        sa.Column('id', PK, autoincrement=True, primary_key=True),
        sa.Column('name', sa.String(100), nullable=False, unique=True),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('interval_seconds', sa.Integer(), nullable=False),
        sa.Column('records_path', sa.String(500), nullable=False),
        sa.Column('pagination', sa.JSON(), nullable=False),
        sa.Column('headers', sa.JSON(), nullable=False),
        sa.Column('secret_header', sa.String(100), nullable=True),
        sa.Column('secret', sa.Text(), nullable=True),
        sa.Column('mapping_file', sa.Text(), nullable=True),
        sa.Column('enabled', sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column('next_run_at', TS, nullable=True),
        sa.Column('lease_until', TS, nullable=True),
        sa.Column('last_run_at', TS, nullable=True),
        sa.Column('last_status', sa.String(16), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('last_job_id', sa.BigInteger(), nullable=True),
        sa.Column('last_records', sa.BigInteger(), nullable=True),
        sa.Column('failures', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('created_at', TS, nullable=False),
    )
    op.create_index('ix_http_sources_due', 'http_sources', ['enabled', 'next_run_at'])


def downgrade() -> None:
    op.drop_table('http_sources')
