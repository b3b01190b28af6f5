"""FHIR out: check-ins keep red-flag reasons and replies, messages to and from patients,
the push sink's outbox, and indexes for keyset paging

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.add_column(sa.Column('red_flag_reasons', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('raw_replies', sa.Text(), nullable=True))
        batch_op.create_index('ix_checkins_completed', ['completed_at', 'checkin_id'], unique=False)
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_raised', ['raised_at', 'alert_id'], unique=False)
    op.create_table(
        'messages',
        sa.Column('message_id', sa.String(length=160), nullable=False),
        sa.Column('patient_id', sa.String(length=128), nullable=False),
        sa.Column('clinic_id', sa.String(length=64), nullable=False),
        sa.Column('direction', sa.String(length=8), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('message_id'),
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_at', ['at', 'message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_patient_id'), ['patient_id'], unique=False)
    op.create_table(
        'fhir_outbox',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('outbox_key', sa.String(length=300), nullable=False),
        sa.Column('resource_type', sa.String(length=40), nullable=False),
        sa.Column('source_id', sa.String(length=160), nullable=False),
        sa.Column('resource_id', sa.String(length=64), nullable=False),
        sa.Column('change', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('pushed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('outbox_key'),
    )
    with op.batch_alter_table('fhir_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_fhir_outbox_due', ['state', 'next_attempt_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_table('fhir_outbox')
    op.drop_table('messages')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_raised')
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.drop_index('ix_checkins_completed')
        batch_op.drop_column('raw_replies')
        batch_op.drop_column('red_flag_reasons')
