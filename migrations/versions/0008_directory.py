"""The directory: Hub24's own users (roles, password hashes) and departments per portal, settings, runs.

Revision ID: 0008
Revises: 0006 (0007 is added in parallel; the chain is re-linked when both land)
Create Date: 2026-11-24 09:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('bitrix_user_id', sa.BigInteger(), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('last_name', sa.String(length=255), nullable=False),
    sa.Column('position', sa.String(length=255), nullable=True),
    sa.Column('departments', postgresql.ARRAY(sa.BigInteger()), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('is_portal_admin', sa.Boolean(), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('password_set_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('admin', 'manager', 'employee')", name=op.f('ck_users_role')),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_users_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('portal_id', 'bitrix_user_id', name='uq_users_portal_id_bitrix_user_id')
    )
    op.create_index(op.f('ix_users_portal_id'), 'users', ['portal_id'], unique=False)
    op.create_index('uq_users_portal_email', 'users', ['portal_id', sa.text('lower(email)')], unique=True,
                    postgresql_where=sa.text('email IS NOT NULL'))
    op.create_table('departments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('bitrix_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('parent_bitrix_id', sa.BigInteger(), nullable=True),
    sa.Column('head_bitrix_user_id', sa.BigInteger(), nullable=True),
    sa.Column('sort', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_departments_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments')),
    sa.UniqueConstraint('portal_id', 'bitrix_id', name='uq_departments_portal_id_bitrix_id')
    )
    op.create_index(op.f('ix_departments_portal_id'), 'departments', ['portal_id'], unique=False)
    op.create_table('directory_settings',
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('daily_at', sa.String(length=5), nullable=True),
    sa.Column('roles_without_email', sa.JSON(), nullable=False),
    sa.Column('last_daily_on', sa.String(length=10), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_directory_settings_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('portal_id', name=op.f('pk_directory_settings'))
    )
    op.create_table('directory_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('trigger', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('job_id', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_directory_runs_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_runs'))
    )
    op.create_index('ix_directory_runs_portal_started', 'directory_runs', ['portal_id', 'started_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_directory_runs_portal_started', table_name='directory_runs')
    op.drop_table('directory_runs')
    op.drop_table('directory_settings')
    op.drop_index(op.f('ix_departments_portal_id'), table_name='departments')
    op.drop_table('departments')
    op.drop_index('uq_users_portal_email', table_name='users')
    op.drop_index(op.f('ix_users_portal_id'), table_name='users')
    op.drop_table('users')
