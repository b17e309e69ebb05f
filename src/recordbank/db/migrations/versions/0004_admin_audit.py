"""admin audit log

One row per admin action through the API (users, keys, credits): who, what, on which target,
with JSON details and the request id. No foreign keys, so the trail outlives what it names.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'admin_audit',
        sa.Column('id', PK, autoincrement=True, primary_key=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('actor_user_id', sa.BigInteger(), nullable=True),
        sa.Column('actor_key_id', sa.BigInteger(), nullable=True),
        sa.Column('action', sa.String(32), nullable=False),
        sa.Column('target_type', sa.String(16), nullable=False),
        sa.Column('target_id', sa.BigInteger(), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('request_id', sa.String(64), nullable=False),
    )
    op.create_index('ix_admin_audit_created_at', 'admin_audit', ['created_at'])
    op.create_index('ix_admin_audit_actor_user_id', 'admin_audit', ['actor_user_id'])
    op.create_index('ix_admin_audit_action', 'admin_audit', ['action'])
    op.create_index('ix_admin_audit_target', 'admin_audit', ['target_type', 'target_id'])


def downgrade() -> None:
    op.drop_table('admin_audit')
