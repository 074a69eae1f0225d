"""Portals and their OAuth tokens (secrets stored encrypted, as text ciphertext).

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 07:24:40.844485
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('portals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.String(length=64), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('client_endpoint', sa.String(length=512), nullable=False),
    sa.Column('server_endpoint', sa.String(length=512), nullable=False),
    sa.Column('status', sa.Enum('installing', 'active', 'needs_reinstall', 'uninstalled', name='portal_status'), nullable=False),
    sa.Column('connection_kind', sa.Enum('oauth_app', 'webhook', name='connection_kind'), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('plan', sa.String(length=32), nullable=False),
    sa.Column('application_token', sa.Text(), nullable=True),
    sa.Column('webhook_url', sa.Text(), nullable=True),
    sa.Column('installed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('install_finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('uninstalled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('needs_reinstall', sa.Boolean(), nullable=False),
    sa.Column('needs_reinstall_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portals')),
    sa.UniqueConstraint('member_id', name=op.f('uq_portals_member_id'))
    )
    op.create_table('portal_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=True),
    sa.Column('refresh_token', sa.Text(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_portal_tokens_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_tokens')),
    sa.UniqueConstraint('portal_id', name=op.f('uq_portal_tokens_portal_id'))
    )


def downgrade() -> None:
    op.drop_table('portal_tokens')
    op.drop_table('portals')
    sa.Enum(name='connection_kind').drop(op.get_bind(), checkfirst=True)
    sa.Enum(name='portal_status').drop(op.get_bind(), checkfirst=True)
