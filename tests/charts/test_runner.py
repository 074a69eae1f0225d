"""The runner's own walls: the portal's read-only role and a read-only transaction, with the guard off."""
import pytest
from sqlalchemy import text

from app.charts import runner
from app.charts.errors import ChartError, QueryFailed, QueryTimeout, Refused


def deals_state(db, portal_id):
    return db.execute(text(f"SELECT count(*), md5(string_agg(id || ':' || coalesce(title, ''), ',' ORDER BY id)) "
                           f"FROM portal_{portal_id}.deals")).one()


DESTRUCTIVE = [
    "DROP TABLE deals",
    "DROP SCHEMA {me} CASCADE",
    "DELETE FROM deals",
    "UPDATE deals SET title = 'pwned'",
    "INSERT INTO deals (id, raw) VALUES (999999, '{{}}')",
    "TRUNCATE deals",
    "ALTER TABLE deals DROP COLUMN title",
    "CREATE TABLE stolen AS SELECT * FROM deals",
    "SELECT * INTO stolen FROM deals",
    "WITH d AS (DELETE FROM deals RETURNING *) SELECT count(*) FROM d",
    "GRANT SELECT ON deals TO PUBLIC",
    "COPY deals TO '/tmp/hub24_stolen.csv'",
    "COPY (SELECT 1) TO PROGRAM 'touch /tmp/hub24_pwned'",
    "SELECT set_config('transaction_read_only', 'off', true)",
    "SELECT * FROM deals FOR UPDATE",
    "SELECT lo_import('/etc/hostname')",
    "SELECT pg_read_file('/etc/hostname')",
    "SELECT nextval('hub24_nope')",
]


def test_guard_off_destructive_sql_changes_nothing(app, db, mirrored):
    conn = db.connection()
    before = deals_state(db, mirrored.id)
    for sql in DESTRUCTIVE:
        with pytest.raises(QueryFailed) as err:
            runner.execute(conn, mirrored.id, sql.format(me=f"portal_{mirrored.id}"))
        assert err.value.message and "Traceback" not in err.value.message
    assert deals_state(db, mirrored.id) == before
    assert db.execute(text("SELECT to_regclass(:t)"), {"t": f"portal_{mirrored.id}.stolen"}).scalar() is None
    # The session got its own role and settings back: the test's transaction can still write.
    assert db.execute(text("SELECT current_user, current_setting('transaction_read_only')")).one() == ("postgres", "off")
    db.execute(text(f"UPDATE portal_{mirrored.id}.deals SET title = title WHERE id = 1"))


def test_role_alone_refuses_writes_even_in_a_writable_transaction(app, db, mirrored):
    """Without the read-only flag, the reader role still may not write: the walls are independent."""
    from app.sync.schema import reader_role

    conn = db.connection()
    role = reader_role(conn, mirrored.id)
    for sql in ("DELETE FROM deals", "UPDATE deals SET title = 'x'", "DROP TABLE deals", "INSERT INTO deals (id, raw) VALUES (1, '{}')"):
        sp = conn.begin_nested()
        conn.exec_driver_sql(f'SET LOCAL ROLE "{role}"')
        conn.exec_driver_sql(f"SET LOCAL search_path = portal_{mirrored.id}")
        with pytest.raises(Exception) as err:
            conn.exec_driver_sql(sql)
        assert "permission denied" in str(err.value) or "must be owner" in str(err.value)
        sp.rollback()


def test_guard_off_cross_portal_and_app_tables_are_unreadable(app, db, mirrored, other_portal):
    conn = db.connection()
    assert db.execute(text(f"SELECT count(*) FROM portal_{other_portal.id}.deals")).scalar() == 15
    for sql in (f"SELECT * FROM portal_{other_portal.id}.deals", f"SELECT count(*) FROM portal_{other_portal.id}.users",
                "SELECT * FROM public.portals", "SELECT * FROM public.portal_tokens", "SELECT * FROM public.api_keys",
                "SELECT * FROM pg_catalog.pg_authid"):
        with pytest.raises(QueryFailed, match="permission denied"):
            runner.execute(conn, mirrored.id, sql)
    # Its own deals are readable, and only those.
    own = runner.execute(conn, mirrored.id, "SELECT count(*) AS n FROM deals")
    assert own.columns == ["n"] and own.rows == [[120]]


def test_guard_off_switching_role_mid_statement_reads_nothing(app, db, mirrored, other_portal):
    """A statement may switch role while it runs, but every read it planned was checked as the reader
    role, and the functions that would run new SQL later are not executable by it (migration 0007)."""
    conn = db.connection()
    other = f"portal_{other_portal.id}"
    for sql in (f"SELECT set_config('role', 'postgres', true), (SELECT count(*) FROM {other}.deals)",
                f"SELECT set_config('role', 'postgres', true), query_to_xml('SELECT * FROM {other}.deals', true, true, '')",
                f"SELECT set_config('role', 'postgres', true), table_to_xml('{other}.deals', true, true, '')",
                f"SELECT set_config('session_authorization', 'postgres', true), ts_stat('SELECT title::tsvector FROM {other}.deals')",
                "SELECT set_config('role', 'postgres', true), lo_get(1)"):
        with pytest.raises(QueryFailed, match="permission denied"):
            runner.execute(conn, mirrored.id, sql)


def test_guard_off_a_second_statement_cannot_undo_the_role(app, db, mirrored):
    before = deals_state(db, mirrored.id)
    for sql in ("SELECT 1; RESET ROLE; DROP TABLE deals", "RESET ROLE; DELETE FROM deals", "select 1 ; ; delete from deals"):
        with pytest.raises(Refused, match="one statement"):
            runner.execute(db.connection(), mirrored.id, sql)
    # A lone RESET ROLE runs, returns nothing and is rolled back with everything else.
    assert runner.execute(db.connection(), mirrored.id, "RESET ROLE").rows == []
    assert deals_state(db, mirrored.id) == before


def test_statement_timeout_stops_a_slow_query(app, db, mirrored):
    with pytest.raises(QueryTimeout) as err:
        runner.execute(db.connection(), mirrored.id, "SELECT pg_sleep(5)", timeout_ms=200)
    assert "0.2 s" in err.value.message


def test_rows_are_json_safe_and_capped(app, db, mirrored):
    res = runner.run_guarded(db.connection(), mirrored.id,
                             "SELECT id, opportunity, created_time, begindate, contact_ids, raw, closed FROM deals ORDER BY id",
                             max_rows=7)
    assert len(res.rows) == 7 and res.truncated
    row = dict(zip(res.columns, res.rows[0]))
    assert row["id"] == 1 and isinstance(row["opportunity"], (int, float))
    assert row["created_time"].startswith("20") and "T" in row["created_time"] and isinstance(row["begindate"], str)
    assert isinstance(row["contact_ids"], list) and isinstance(row["raw"], dict) and isinstance(row["closed"], bool)
    assert res.kinds[:4] == ["number", "number", "datetime", "date"]


def test_guarded_run_refuses_before_touching_the_database(app, db, mirrored):
    with pytest.raises(Refused, match="pg_sleep"):
        runner.run_guarded(db.connection(), mirrored.id, "SELECT pg_sleep(5)")


def test_portal_without_a_mirror_is_told_to_sync(app, db, portal):
    with pytest.raises(ChartError) as err:
        runner.run_guarded(db.connection(), portal.id, "SELECT 1")
    assert err.value.code == "not_synced" and "sync" in err.value.message
