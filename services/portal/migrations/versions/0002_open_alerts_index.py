"""the inbox's index covers only alerts not yet resolved, in the inbox's order

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_inbox')
        batch_op.create_index('ix_alerts_open', ['clinic_id', 'severity_rank', 'raised_at', 'alert_id'], unique=False,
                              sqlite_where=sa.text("status != 'resolved'"), postgresql_where=sa.text("status != 'resolved'"))


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_open', sqlite_where=sa.text("status != 'resolved'"),
                            postgresql_where=sa.text("status != 'resolved'"))
        batch_op.create_index('ix_alerts_inbox', ['clinic_id', 'status', 'severity_rank', 'raised_at'], unique=False)
