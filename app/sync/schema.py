"""Each portal's mirror lives in its own PostgreSQL schema, readable by its own read-only role.

Reference tables have a fixed layout (`REFERENCE_DDL`); entity tables are built from field metadata and
follow changes in the portal: new fields become new columns, changed titles become new comments, a
changed type is converted in place from the raw record, and a removed field keeps its column and data.
"""
from __future__ import annotations

import hashlib
import re

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .columns import Column

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def ident(name: str) -> str:
    """Quote a generated identifier after checking it is one of ours (lower-case, no surprises)."""
    if not _IDENT.match(name):
        raise ValueError(f"refusing unexpected SQL identifier {name!r}")
    return f'"{name}"'


def schema_name(portal_id: int) -> str:
    """The schema holding a portal's mirror."""
    return f"portal_{int(portal_id)}"


def reader_role(conn: Connection, portal_id: int) -> str:
    """The read-only role for a portal's schema (roles are cluster-wide, so the database name is folded in)."""
    db = conn.exec_driver_sql("SELECT current_database()").scalar()
    return f"hub24_{hashlib.sha1(db.encode()).hexdigest()[:6]}_p{int(portal_id)}_ro"


REFERENCE_DDL = """
CREATE TABLE IF NOT EXISTS {s}.entities (
    table_name text PRIMARY KEY, entity text NOT NULL, entity_type_id int NOT NULL, title text NOT NULL,
    schema_version text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
COMMENT ON TABLE {s}.entities IS 'Mirrored CRM entity tables: deals, leads, contacts, companies and smart processes';
CREATE TABLE IF NOT EXISTS {s}.fields (
    table_name text NOT NULL, column_name text NOT NULL, b24_field text, title text NOT NULL, b24_type text,
    pg_type text NOT NULL, is_multiple boolean NOT NULL DEFAULT false, status_type text, label_of text,
    removed boolean NOT NULL DEFAULT false, PRIMARY KEY (table_name, column_name));
COMMENT ON TABLE {s}.fields IS 'Every mirrored column with its Bitrix24 field name, title and type';
CREATE TABLE IF NOT EXISTS {s}.enum_items (
    table_name text NOT NULL, column_name text NOT NULL, item_id bigint NOT NULL, value text NOT NULL,
    PRIMARY KEY (table_name, column_name, item_id));
COMMENT ON TABLE {s}.enum_items IS 'Values of list (enumeration) custom fields';
CREATE TABLE IF NOT EXISTS {s}.statuses (
    entity_id text NOT NULL, status_id text NOT NULL, name text NOT NULL, sort int, category_id int,
    semantics text, color text, raw jsonb NOT NULL, PRIMARY KEY (entity_id, status_id));
ALTER TABLE {s}.statuses ADD COLUMN IF NOT EXISTS family text
    GENERATED ALWAYS AS (regexp_replace(entity_id, 'STAGE_[0-9]+$', 'STAGE')) STORED;
CREATE INDEX IF NOT EXISTS statuses_family ON {s}.statuses (family, status_id);
COMMENT ON COLUMN {s}.statuses.family IS 'entity_id without the pipeline number: every pipeline''s stages of one entity type';
COMMENT ON TABLE {s}.statuses IS 'Stages of every pipeline and the reference lists (crm.status.list): DEAL_STAGE*, STATUS (lead stages), SOURCE, DEAL_TYPE, ...';
CREATE TABLE IF NOT EXISTS {s}.categories (
    entity_type_id int NOT NULL, id bigint NOT NULL, name text NOT NULL, sort int, is_default boolean,
    raw jsonb NOT NULL, PRIMARY KEY (entity_type_id, id));
COMMENT ON TABLE {s}.categories IS 'Pipelines (crm.category.list) of deals and smart processes';
CREATE TABLE IF NOT EXISTS {s}.users (
    id bigint PRIMARY KEY, name text, last_name text, full_name text, email text, active boolean,
    position text, departments bigint[], is_admin boolean, raw jsonb NOT NULL, synced_at timestamptz NOT NULL DEFAULT now());
COMMENT ON TABLE {s}.users IS 'Portal users (user.get)';
CREATE TABLE IF NOT EXISTS {s}.departments (
    id bigint PRIMARY KEY, name text NOT NULL, parent bigint, sort int, head bigint, raw jsonb NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now());
COMMENT ON TABLE {s}.departments IS 'Company structure (department.get); parent is the parent department id';
CREATE TABLE IF NOT EXISTS {s}.multifields (
    table_name text NOT NULL, entity_id bigint NOT NULL, type_id text NOT NULL, value_type text, value text NOT NULL,
    item_id text NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS multifields_entity ON {s}.multifields (table_name, entity_id);
CREATE INDEX IF NOT EXISTS multifields_value ON {s}.multifields (type_id, value);
COMMENT ON TABLE {s}.multifields IS 'Phones, e-mails, web sites and messengers of contacts, companies and leads (type_id PHONE|EMAIL|WEB|IM)';
CREATE TABLE IF NOT EXISTS {s}.item_contacts (
    table_name text NOT NULL, entity_id bigint NOT NULL, contact_id bigint NOT NULL,
    PRIMARY KEY (table_name, entity_id, contact_id));
COMMENT ON TABLE {s}.item_contacts IS 'Contacts linked to deals, leads and smart-process items (contactIds)';
"""


def ensure_portal_schema(conn: Connection, portal_id: int) -> str:
    """Create the portal's schema, reference tables and read-only role if missing; return the schema name."""
    s = schema_name(portal_id)
    conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {ident(s)}")
    conn.exec_driver_sql(REFERENCE_DDL.format(s=ident(s)))
    role = reader_role(conn, portal_id)
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
    if not exists:
        conn.exec_driver_sql(f"CREATE ROLE {ident(role)} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT")
        # The app's own (non-superuser) login must be able to SET ROLE to it for chart queries.
        conn.exec_driver_sql(f"GRANT {ident(role)} TO CURRENT_USER")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {ident(s)} TO {ident(role)}")
    conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {ident(s)} TO {ident(role)}")
    conn.exec_driver_sql(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {ident(s)} GRANT SELECT ON TABLES TO {ident(role)}")
    return s


def drop_portal_schema(conn: Connection, portal_id: int) -> None:
    """Drop a portal's mirror and its read-only role."""
    s = schema_name(portal_id)
    conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {ident(s)} CASCADE")
    role = reader_role(conn, portal_id)
    if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
        conn.exec_driver_sql(f"DROP OWNED BY {ident(role)}")
        conn.exec_driver_sql(f"DROP ROLE {ident(role)}")


def _existing_columns(conn: Connection, schema: str, table: str) -> dict[str, str]:
    rows = conn.execute(text(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relname = :t AND a.attnum > 0 AND NOT a.attisdropped"), {"s": schema, "t": table})
    return {name: typ for name, typ in rows}


_TYPE_ALIASES = {"timestamptz": "timestamp with time zone", "timestamptz[]": "timestamp with time zone[]"}


def _same_type(declared: str, actual: str) -> bool:
    return _TYPE_ALIASES.get(declared, declared) == actual


def ensure_entity_table(conn: Connection, schema: str, table: str, columns: list[Column], *, entity: str,
                        entity_type_id: int, title: str, version: str) -> list[str]:
    """Create or evolve an entity table to match `columns`.

    Returns the names of columns whose type changed: their values were cleared and must be re-derived
    from `raw` (engine.rebuild_columns does that), so no data is lost.
    """
    s, t = ident(schema), ident(table)
    existing = _existing_columns(conn, schema, table)
    retyped: list[str] = []
    if not existing:
        cols_sql = ", ".join(f"{ident(c.name)} {c.pg_type}" for c in columns)
        conn.exec_driver_sql(
            f"CREATE TABLE {s}.{t} (id bigint PRIMARY KEY, {cols_sql}{', ' if cols_sql else ''}"
            f"raw jsonb NOT NULL, synced_at timestamptz NOT NULL DEFAULT now())")
    else:
        for c in columns:
            if c.name not in existing:
                conn.exec_driver_sql(f"ALTER TABLE {s}.{t} ADD COLUMN {ident(c.name)} {c.pg_type}")
            elif not _same_type(c.pg_type, existing[c.name]):
                conn.exec_driver_sql(f"ALTER TABLE {s}.{t} ALTER COLUMN {ident(c.name)} TYPE {c.pg_type} USING NULL")
                retyped.append(c.name)
    conn.execute(text(f"COMMENT ON TABLE {s}.{t} IS " + _literal(title)))
    for c in columns:
        conn.execute(text(f"COMMENT ON COLUMN {s}.{t}.{ident(c.name)} IS " + _literal(c.title)))
    _record_fields(conn, schema, table, columns, removed=[n for n in existing if n not in {c.name for c in columns}
                                                           and n not in ("id", "raw", "synced_at")])
    conn.execute(text(f"INSERT INTO {s}.entities (table_name, entity, entity_type_id, title, schema_version) "
                      "VALUES (:t, :e, :et, :ti, :v) ON CONFLICT (table_name) DO UPDATE SET entity = EXCLUDED.entity, "
                      "title = EXCLUDED.title, schema_version = EXCLUDED.schema_version, updated_at = now()"),
                 {"t": table, "e": entity, "et": entity_type_id, "ti": title, "v": version})
    return retyped


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _record_fields(conn: Connection, schema: str, table: str, columns: list[Column], removed: list[str]) -> None:
    s = ident(schema)
    for c in columns:
        conn.execute(text(
            f"INSERT INTO {s}.fields (table_name, column_name, b24_field, title, b24_type, pg_type, is_multiple, "
            "status_type, label_of, removed) VALUES (:t, :c, :f, :ti, :bt, :pt, :m, :st, :lo, false) "
            "ON CONFLICT (table_name, column_name) DO UPDATE SET b24_field = EXCLUDED.b24_field, title = EXCLUDED.title, "
            "b24_type = EXCLUDED.b24_type, pg_type = EXCLUDED.pg_type, is_multiple = EXCLUDED.is_multiple, "
            "status_type = EXCLUDED.status_type, label_of = EXCLUDED.label_of, removed = false"),
            {"t": table, "c": c.name, "f": c.source, "ti": c.title, "bt": c.field_type, "pt": c.pg_type,
             "m": c.multiple, "st": c.status_type, "lo": c.label_of})
        if c.enum_items and c.label_of is None:
            conn.execute(text(f"DELETE FROM {s}.enum_items WHERE table_name = :t AND column_name = :c"),
                         {"t": table, "c": c.name})
            for item_id, value in c.enum_items:
                conn.execute(text(f"INSERT INTO {s}.enum_items VALUES (:t, :c, :i, :v)"),
                             {"t": table, "c": c.name, "i": item_id, "v": value})
    for name in removed:
        conn.execute(text(f"UPDATE {s}.fields SET removed = true WHERE table_name = :t AND column_name = :c"),
                     {"t": table, "c": name})
        conn.execute(text(f"COMMENT ON COLUMN {s}.{ident(table)}.{ident(name)} IS 'removed from Bitrix24; kept with its data'"))
