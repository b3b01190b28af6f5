"""an index of resolved alerts by clinic and time, for the inbox's "recently resolved"

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_resolved', ['clinic_id', 'resolved_at'], unique=False,
                              sqlite_where=sa.text("status = 'resolved'"), postgresql_where=sa.text("status = 'resolved'"))


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_resolved', sqlite_where=sa.text("status = 'resolved'"),
                            postgresql_where=sa.text("status = 'resolved'"))
