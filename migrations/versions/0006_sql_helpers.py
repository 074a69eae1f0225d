"""Helper functions for loading the CRM mirror: forgiving casts from Bitrix24 text to typed values.

They never raise: a value that is not a number, flag, date or time becomes NULL (the raw record keeps it).
On PostgreSQL 16 and later they ask the type's own input function (`pg_input_is_valid`, C code, about
twenty times faster than a regular expression); on older servers they check the text with patterns.
They are meant for column values (the loader's use): with a literal argument the planner may fold a cast
before the check runs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 08:30:00
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

COMMON = r"""
CREATE SCHEMA IF NOT EXISTS hub24;
GRANT USAGE ON SCHEMA hub24 TO PUBLIC;
CREATE OR REPLACE FUNCTION hub24.to_bool(t text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE upper(btrim(t)) WHEN 'Y' THEN true WHEN '1' THEN true WHEN 'TRUE' THEN true
                              WHEN 'N' THEN false WHEN '0' THEN false WHEN 'FALSE' THEN false END $$;
"""

# PostgreSQL 16+: the types' own parsers, without raising. A leading digit is required so that words the
# parsers accept ('now', 'today', 'infinity', 'NaN') never turn into values.
MODERN = r"""
CREATE OR REPLACE FUNCTION hub24.to_bigint(t text) RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN pg_input_is_valid(t, 'bigint') THEN t::bigint
              WHEN btrim(t) ~ '^-?\d' AND pg_input_is_valid(t, 'numeric')
                   AND pg_input_is_valid(trunc(t::numeric)::text, 'bigint') THEN trunc(t::numeric)::bigint END $$;
CREATE OR REPLACE FUNCTION hub24.to_numeric(t text) RETURNS numeric LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN left(btrim(t), 1) ~ '[-0-9.]' AND pg_input_is_valid(t, 'numeric') THEN t::numeric END $$;
CREATE OR REPLACE FUNCTION hub24.to_date(t text) RETURNS date LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN substr(t, 5, 1) = '-' AND left(t, 1) BETWEEN '0' AND '9'
                   AND pg_input_is_valid(substr(t, 1, 10), 'date') THEN substr(t, 1, 10)::date END $$;
CREATE OR REPLACE FUNCTION hub24.to_ts(t text) RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN substr(t, 5, 1) = '-' AND left(t, 1) BETWEEN '0' AND '9'
                   AND pg_input_is_valid(t, 'timestamptz') THEN t::timestamptz END $$;
"""

# PostgreSQL 15 and older: patterns, and a calendar check so 2026-02-30 never reaches a cast.
LEGACY = r"""
CREATE OR REPLACE FUNCTION hub24.to_bigint(t text) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN t ~ '^\s*-?\d{1,18}\s*$' THEN t::bigint
              WHEN t ~ '^\s*-?\d{1,18}\.\d*\s*$' THEN trunc(t::numeric)::bigint END $$;
CREATE OR REPLACE FUNCTION hub24.to_numeric(t text) RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN t ~ '^\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d{1,3})?\s*$' THEN t::numeric END $$;
CREATE OR REPLACE FUNCTION hub24.valid_ymd(t text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN t ~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])' AND substr(t, 1, 4) <> '0000'
              THEN substr(t, 9, 2)::int <= extract(day from make_date(substr(t, 1, 4)::int, substr(t, 6, 2)::int, 1)
                                                   + interval '1 month' - interval '1 day')
              ELSE false END $$;
CREATE OR REPLACE FUNCTION hub24.to_date(t text) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN hub24.valid_ymd(t) THEN substr(t, 1, 10)::date END $$;
CREATE OR REPLACE FUNCTION hub24.to_ts(t text) RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN t ~ '^\d{4}-\d{2}-\d{2}([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?)?(Z|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)?$'
               AND hub24.valid_ymd(t) THEN t::timestamptz END $$;
"""


def upgrade() -> None:
    op.execute(COMMON)
    version = op.get_bind().exec_driver_sql("SHOW server_version_num").scalar()
    op.execute(MODERN if int(version) >= 160000 else LEGACY)


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS hub24 CASCADE")
