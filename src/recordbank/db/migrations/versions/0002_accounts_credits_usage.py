"""accounts, credits and usage

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('id', PK, autoincrement=True, primary_key=True),
        sa.Column('email', sa.String(320), nullable=False, unique=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('role', sa.String(16), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('rate_limit', sa.String(200), nullable=True),
        sa.Column('ledger_seq', sa.BigInteger(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
    )
    op.create_table(
        'api_keys',
        sa.Column('id', PK, autoincrement=True, primary_key=True),
        sa.Column('user_id', PK, sa.ForeignKey('users.id'), nullable=False, index=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('prefix', sa.String(32), nullable=False, unique=True),
        sa.Column('key_hash', sa.String(64), nullable=False),
        sa.Column('scopes', sa.JSON(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('last_used_at', TS, nullable=True),
        sa.Column('expires_at', TS, nullable=True),
        sa.Column('revoked_at', TS, nullable=True),
    )
    op.create_table(
        'credit_grants',
        sa.Column('id', PK, autoincrement=True, primary_key=True),
        sa.Column('user_id', PK, sa.ForeignKey('users.id'), nullable=False, index=True),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('remaining', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', TS, nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
    )
    op.create_table(
        'credit_holds',
        sa.Column('id', PK, autoincrement=True, primary_key=True),
        sa.Column('user_id', PK, sa.ForeignKey('users.id'), nullable=False, index=True),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('charged', sa.BigInteger(), nullable=True),
        sa.Column('status', sa.String(16), nullable=False, index=True),
        sa.Column('allocations', sa.JSON(), nullable=False),
        sa.Column('request_id', sa.String(64), nullable=False),
        sa.Column('endpoint', sa.String(200), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('closed_at', TS, nullable=True),
    )
    op.create_table(
        'credit_ledger',
        sa.Column('id', PK, autoincrement=True, primary_key=True),
        sa.Column('user_id', PK, sa.ForeignKey('users.id'), nullable=False, index=True),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('grant_id', sa.BigInteger(), nullable=True),
        sa.Column('hold_id', sa.BigInteger(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('request_id', sa.String(64), nullable=False),
        sa.Column('created_at', TS, nullable=False),
    )
    op.create_table(
        'idempotent_responses',
        sa.Column('id', PK, autoincrement=True, primary_key=True),
        sa.Column('user_id', PK, sa.ForeignKey('users.id'), nullable=False),
        sa.Column('key', sa.String(200), nullable=False),
        sa.Column('fingerprint', sa.String(64), nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('media_type', sa.String(100), nullable=True),
        sa.Column('headers', sa.JSON(), nullable=True),
        sa.Column('body', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.UniqueConstraint('user_id', 'key'),
    )
    op.create_table(
        'usage_log',
        sa.Column('id', PK, autoincrement=True, primary_key=True),
        sa.Column('created_at', TS, nullable=False, index=True),
        sa.Column('request_id', sa.String(64), nullable=False),
        sa.Column('key_id', sa.BigInteger(), nullable=True, index=True),
        sa.Column('user_id', sa.BigInteger(), nullable=True, index=True),
        sa.Column('method', sa.String(8), nullable=False),
        sa.Column('path', sa.String(300), nullable=False),
        sa.Column('params', sa.JSON(), nullable=True),
        sa.Column('status', sa.Integer(), nullable=False),
        sa.Column('error_code', sa.String(64), nullable=True),
        sa.Column('rows_returned', sa.BigInteger(), nullable=False),
        sa.Column('credits_charged', sa.BigInteger(), nullable=False),
        sa.Column('duration_ms', sa.Float(), nullable=False),
        sa.Column('client', sa.String(64), nullable=True),
    )


def downgrade() -> None:
    for table in ('usage_log', 'idempotent_responses', 'credit_ledger', 'credit_holds',
                  'credit_grants', 'api_keys', 'users'):
        op.drop_table(table)
