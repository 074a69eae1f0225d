"""Charts: the question log, and no dynamic-SQL or large-object functions for PUBLIC.

The functions revoked here run SQL text or read objects with the privileges of whoever is the current
role *when they run*; a chart query could otherwise switch role mid-statement (set_config('role', ...))
and read another portal through them. Hub24 never calls them. Revoking needs a superuser; without one
the migration says so and carries on (the SQL guard refuses these functions anyway).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

DYNAMIC_SQL_FUNCTIONS = (
    "query_to_xml(text, boolean, boolean, text)", "query_to_xmlschema(text, boolean, boolean, text)",
    "query_to_xml_and_xmlschema(text, boolean, boolean, text)",
    "table_to_xml(regclass, boolean, boolean, text)", "table_to_xmlschema(regclass, boolean, boolean, text)",
    "table_to_xml_and_xmlschema(regclass, boolean, boolean, text)",
    "schema_to_xml(name, boolean, boolean, text)", "schema_to_xmlschema(name, boolean, boolean, text)",
    "schema_to_xml_and_xmlschema(name, boolean, boolean, text)",
    "database_to_xml(boolean, boolean, text)", "database_to_xmlschema(boolean, boolean, text)",
    "database_to_xml_and_xmlschema(boolean, boolean, text)",
    "cursor_to_xml(refcursor, integer, boolean, boolean, text)", "ts_stat(text)", "ts_stat(text, text)",
    "ts_rewrite(tsquery, text)", "lo_get(oid)", "lo_get(oid, bigint, integer)", "lo_open(oid, integer)",
)


def _revoke(grant: str) -> str:
    stmts = "".join(f"  EXECUTE '{grant} EXECUTE ON FUNCTION pg_catalog.{f} {'FROM' if grant == 'REVOKE' else 'TO'} PUBLIC';\n"
                    for f in DYNAMIC_SQL_FUNCTIONS)
    return ("DO $$\nBEGIN\n" + stmts +
            "EXCEPTION WHEN insufficient_privilege THEN\n"
            "  RAISE WARNING 'hub24: not a superuser, dynamic-SQL functions stay executable by PUBLIC';\nEND $$;")


def upgrade() -> None:
    op.create_table('chart_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('question_hash', sa.String(length=40), nullable=False),
    sa.Column('schema_version', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('job_id', sa.String(length=128), nullable=True),
    sa.Column('sql', sa.Text(), nullable=True),
    sa.Column('spec', sa.JSON(), nullable=True),
    sa.Column('error', sa.String(length=32), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('cached', sa.Boolean(), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_chart_questions_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chart_questions'))
    )
    op.create_index('ix_chart_questions_portal_created', 'chart_questions', ['portal_id', 'created_at'], unique=False)
    op.execute(_revoke("REVOKE"))


def downgrade() -> None:
    op.execute(_revoke("GRANT"))
    op.drop_index('ix_chart_questions_portal_created', table_name='chart_questions')
    op.drop_table('chart_questions')
