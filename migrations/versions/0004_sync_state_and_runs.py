"""Sync: per-portal entity settings and cursors, and every sync run with its counters.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 08:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sync_states',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('interval_s', sa.Integer(), nullable=False),
    sa.Column('realtime', sa.Boolean(), nullable=False),
    sa.Column('full_cursor', sa.BigInteger(), nullable=True),
    sa.Column('full_completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('watermark', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_incremental_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_reconcile_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('schema_version', sa.String(length=32), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_sync_states_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_states')),
    sa.UniqueConstraint('portal_id', 'entity', name='uq_sync_states_portal_id_entity')
    )
    op.create_table('sync_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('mode', sa.Enum('full', 'incremental', 'realtime', 'reconcile', name='sync_mode'), nullable=False),
    sa.Column('status', sa.Enum('running', 'succeeded', 'failed', 'paused', 'abandoned', name='sync_run_status'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rows_read', sa.BigInteger(), nullable=False),
    sa.Column('rows_written', sa.BigInteger(), nullable=False),
    sa.Column('rows_deleted', sa.BigInteger(), nullable=False),
    sa.Column('calls_made', sa.Integer(), nullable=False),
    sa.Column('cursor', sa.BigInteger(), nullable=True),
    sa.Column('total_expected', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('job_id', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_sync_runs_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_runs'))
    )
    op.create_index('ix_sync_runs_portal_started', 'sync_runs', ['portal_id', 'started_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sync_runs_portal_started', table_name='sync_runs')
    op.drop_table('sync_runs')
    op.drop_table('sync_states')
    sa.Enum(name='sync_run_status').drop(op.get_bind(), checkfirst=True)
    sa.Enum(name='sync_mode').drop(op.get_bind(), checkfirst=True)
