"""The SQL guard: one read-only SELECT over the portal's own tables, ordinary functions, a row limit."""
import pytest

from app.charts.errors import Refused
from app.charts.guard import check

SCHEMA = "portal_7"
TABLES = {"deals", "contacts", "companies", "users", "departments", "statuses", "categories", "item_contacts",
          "multifields", "fields", "enum_items", "entities"}


def ok(sql, max_rows=1000):
    return check(sql, schema=SCHEMA, tables=TABLES, max_rows=max_rows)


@pytest.mark.parametrize("sql", [
    "SELECT stage_id_label, count(*) FROM deals GROUP BY 1 ORDER BY 2 DESC",
    "select date_trunc('month', created_time) m, sum(opportunity) from deals where stage_id like '%WON' group by 1",
    "WITH won AS (SELECT * FROM deals WHERE stage_semantic_id = 'S') SELECT u.full_name, count(*) FROM won "
    "JOIN users u ON u.id = won.assigned_by_id GROUP BY 1",
    "SELECT c.title, count(d.id) FROM companies c LEFT JOIN deals d ON d.company_id = c.id GROUP BY 1",
    "SELECT * FROM portal_7.deals",
    "SELECT d.id FROM deals d WHERE d.id IN (SELECT entity_id FROM item_contacts WHERE table_name = 'deals')",
    "SELECT stage_id FROM deals UNION ALL SELECT status_id FROM statuses",
    "SELECT extract(year FROM created_time), percentile_cont(0.5) WITHIN GROUP (ORDER BY opportunity) FROM deals GROUP BY 1",
    "SELECT g, count(*) FROM generate_series(1, 3) g GROUP BY 1",
    "SELECT to_char(created_time, 'YYYY-MM'), coalesce(sum(opportunity), 0), row_number() OVER () FROM deals GROUP BY 1",
    "WITH RECURSIVE t(d) AS (SELECT id FROM departments WHERE parent IS NULL UNION ALL "
    "SELECT departments.id FROM departments JOIN t ON departments.parent = t.d) SELECT count(*) FROM t",
    "SELECT unnest(contact_ids) FROM deals",
    "SELECT 'pg_sleep(10); DROP TABLE deals' AS text_only",
    "SELECT 1 FROM deals; ",
])
def test_allows_ordinary_reads(sql):
    g = ok(sql)
    assert g.sql.upper().startswith(("SELECT", "WITH"))
    assert "LIMIT 1001" in g.sql and g.limit == 1000


@pytest.mark.parametrize("sql, words", [
    ("DROP TABLE deals", "Only a SELECT"),
    ("DELETE FROM deals", "Only a SELECT"),
    ("UPDATE deals SET title = 'x'", "Only a SELECT"),
    ("INSERT INTO deals (id) VALUES (1)", "Only a SELECT"),
    ("TRUNCATE deals", "Only a SELECT"),
    ("ALTER TABLE deals ADD COLUMN x int", "Only a SELECT"),
    ("CREATE TABLE x AS SELECT * FROM deals", "Only a SELECT"),
    ("GRANT SELECT ON deals TO public", "Only a SELECT"),
    ("COPY deals TO '/tmp/deals.csv'", "Only a SELECT"),
    ("COPY (SELECT 1) TO PROGRAM 'id'", "Only a SELECT"),
    ("SET ROLE postgres", "Only a SELECT"),
    ("RESET ROLE", "Only a SELECT"),
    ("EXPLAIN ANALYZE SELECT * FROM deals", "Only a SELECT"),
    ("VACUUM deals", "Only a SELECT"),
    ("VALUES (1)", "Only a SELECT"),
    ("SELECT 1; DROP TABLE deals", "Exactly one statement"),
    ("SELECT 1; SELECT 2", "Exactly one statement"),
    ("WITH d AS (DELETE FROM deals RETURNING *) SELECT * FROM d", "DELETE is not allowed"),
    ("WITH d AS (UPDATE deals SET title = 'x' RETURNING *) SELECT * FROM d", "UPDATE is not allowed"),
    ("WITH d AS (INSERT INTO deals (id) VALUES (1) RETURNING *) SELECT * FROM d", "INSERT is not allowed"),
    ("SELECT * INTO stolen FROM deals", "SELECT INTO"),
    ("SELECT * FROM deals FOR UPDATE", "FOR UPDATE"),
    ("SELECT * FROM deals FOR SHARE", "FOR UPDATE"),
    ("SELECT * FROM portal_8.deals", "not schema portal_8"),
    ("SELECT * FROM public.portal_tokens", "not schema public"),
    ("SELECT * FROM hub24.to_bigint('1')", "not schema hub24"),
    ("SELECT * FROM pg_catalog.pg_authid", "not schema pg_catalog"),
    ("SELECT * FROM information_schema.tables", "not schema information_schema"),
    ("SELECT * FROM pg_roles", "Unknown table pg_roles"),
    ("SELECT * FROM pg_stat_activity", "Unknown table pg_stat_activity"),
    ("SELECT * FROM portal_tokens", "Unknown table portal_tokens"),
    ("SELECT * FROM otherdb.public.deals", "another database"),
    ("SELECT portal_8.deals.id FROM deals", "only this portal"),
    ("SELECT * FROM deals d, (WITH pg_roles AS (SELECT 1) SELECT 1) q, pg_roles", "Unknown table pg_roles"),
    ("SELECT pg_sleep(10)", "pg_sleep"),
    ("SELECT * FROM deals WHERE pg_sleep(1) IS NULL", "pg_sleep"),
    ("SELECT pg_sleep_for('5 minutes')", "pg_sleep_for"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    ("SELECT pg_read_binary_file('/etc/passwd')", "pg_read_binary_file"),
    ("SELECT pg_ls_dir('.')", "pg_ls_dir"),
    ("SELECT lo_import('/etc/passwd')", "lo_import"),
    ("SELECT lo_export(1, '/tmp/x')", "lo_export"),
    ("SELECT * FROM dblink('dbname=other', 'select 1') AS t(a int)", "dblink"),
    ("SELECT set_config('role', 'postgres', false)", "set_config"),
    ("SELECT current_setting('data_directory')", "current_setting"),
    ("SELECT nextval('some_seq')", "nextval"),
    ("SELECT setval('some_seq', 1)", "setval"),
    ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
    ("SELECT pg_cancel_backend(1)", "pg_cancel_backend"),
    ("SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
    ("SELECT pg_notify('x', 'y')", "pg_notify"),
    ("SELECT query_to_xml('select * from portal_8.deals', true, true, '')", "query_to_xml"),
    ("SELECT txid_current()", "txid_current"),
    ("SELECT version()", "not allowed"),
    ("SELECT current_user", "not allowed"),
    ("SELECT pg_catalog.now()", "Schema-qualified"),
    ("SELECT some_udf(id) FROM deals", "not on the list"),
    ("SELECT 'pg_authid'::regclass", "catalog types"),
    ("", "empty"),
    ("   ", "empty"),
    ("SELEC * FRM deals", "Only a SELECT"),
    ("SELECT 'unterminated", "could not be parsed"),
])
def test_refuses_with_a_reason(sql, words):
    with pytest.raises(Refused) as err:
        ok(sql)
    assert words in err.value.message, err.value.message
    assert "Traceback" not in err.value.message


def test_refuses_huge_text():
    with pytest.raises(Refused, match="longer than"):
        ok("SELECT 1" + " " * 30_000)


def test_qualifies_tables_with_the_portal_schema_and_keeps_ctes():
    g = ok("WITH w AS (SELECT * FROM deals) SELECT count(*) FROM w JOIN users u ON TRUE")
    assert "FROM portal_7.deals" in g.sql and "JOIN portal_7.users AS u" in g.sql and "FROM w " in g.sql
    assert g.tables == {"deals", "users"}


def test_row_limit_added_capped_and_kept_when_smaller():
    assert ok("SELECT * FROM deals", max_rows=50).sql.endswith("LIMIT 51")
    big = ok("SELECT * FROM deals LIMIT 100000", max_rows=50)
    assert big.sql.endswith("LIMIT 51") and big.limit == 50
    small = ok("SELECT * FROM deals LIMIT 10", max_rows=50)
    assert small.sql.endswith("LIMIT 11") and small.limit == 10
    assert ok("SELECT * FROM deals LIMIT ALL", max_rows=50).limit == 50
    union = ok("SELECT id FROM deals UNION SELECT id FROM contacts ORDER BY 1", max_rows=50)
    assert union.sql.endswith("ORDER BY 1 LIMIT 51")


def test_runs_what_it_checked_not_the_original_text():
    g = ok("select /* ; drop table deals */ id from deals -- ; delete")
    assert "drop" not in g.sql.lower() and "delete" not in g.sql.lower()
