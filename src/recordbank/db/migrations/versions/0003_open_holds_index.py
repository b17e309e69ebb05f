"""index on credit_holds (user_id, status)

A user's open holds are read on every GET /v1/credits; without this index that read scanned the
user's whole hold history (1.8 ms at 3,200 holds against 20 µs with it).

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_credit_holds_user_status', 'credit_holds', ['user_id', 'status'])


def downgrade() -> None:
    op.drop_index('ix_credit_holds_user_status', table_name='credit_holds')
