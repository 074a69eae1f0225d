"""Install lifecycle: recorded portal events, robot invocations, what reconcile registered.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('portals', sa.Column('registered', sa.JSON(), nullable=False, server_default='{}'))
    op.alter_column('portals', 'registered', server_default=None)
    op.create_table('portal_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('event_name', sa.String(length=64), nullable=False),
    sa.Column('entity_type', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=160), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_portal_events_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_events')),
    sa.UniqueConstraint('portal_id', 'dedupe_key', name='uq_portal_events_portal_id_dedupe_key')
    )
    op.create_index('ix_portal_events_pending', 'portal_events', ['portal_id', 'entity_type', 'consumed_at'], unique=False)
    op.create_table('robot_invocations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('workflow_id', sa.String(length=128), nullable=False),
    sa.Column('document_id', sa.JSON(), nullable=False),
    sa.Column('document_type', sa.JSON(), nullable=False),
    sa.Column('properties', sa.JSON(), nullable=False),
    sa.Column('event_token', sa.Text(), nullable=True),
    sa.Column('use_subscription', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_robot_invocations_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_robot_invocations')),
    sa.UniqueConstraint('portal_id', 'workflow_id', 'code', name='uq_robot_invocations_portal_id_workflow_id_code')
    )


def downgrade() -> None:
    op.drop_table('robot_invocations')
    op.drop_index('ix_portal_events_pending', table_name='portal_events')
    op.drop_table('portal_events')
    op.drop_column('portals', 'registered')
