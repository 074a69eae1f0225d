"""Field metadata -> typed tables with titles and labels; chunked loading; schema evolution keeps data."""
import pytest
import requests
from sqlalchemy import text

from app.sync import schema as sch
from app.sync.columns import columns_for, schema_version, snake
from app.sync.load import delete_ids, load_records, rebuild_columns
from app.sync.reference import load_labels
from app.sync.transform import Labels, to_row
from sandbox.core import SandboxConfig
from sandbox.run import start_sandbox


@pytest.fixture(scope="module")
def portal_hook():
    handle = start_sandbox(SandboxConfig(data_size=120, limits="off"))
    hook = handle.portal.add_webhook(1, ["crm", "user", "department"])
    yield handle, handle.portal.webhook_url(hook)
    handle.stop()


def rest(url, method, **params):
    r = requests.post(url + method, json=params, timeout=30)
    r.raise_for_status()
    return r.json()


def test_snake_names():
    assert snake("stageId") == "stage_id"
    assert snake("UF_CRM_1721244206") == "uf_crm_1721244206"
    assert snake("parentId1032") == "parent_id_1032"
    assert snake("isManualOpportunity") == "is_manual_opportunity"


def test_deals_table_typed_labelled_and_loaded(db, portal_hook):
    _, url = portal_hook
    fields = rest(url, "crm.item.fields", entityTypeId=2, useOriginalUfNames="Y")["result"]["fields"]
    cols = columns_for(fields)
    by_name = {c.name: c for c in cols}
    assert by_name["opportunity"].pg_type == "numeric"
    assert by_name["stage_id_label"].label_of == "stage_id"
    assert by_name["contact_ids"].pg_type == "bigint[]"
    enum_col = next(c for c in cols if c.field_type == "enumeration" and c.label_of is None)
    assert enum_col.enum_items and f"{enum_col.name}_label" in by_name

    statuses = rest(url, "crm.status.list")["result"]
    conn = db.connection()
    s = sch.ensure_portal_schema(conn, 901)
    for st in statuses:
        conn.execute(text(f"INSERT INTO {s}.statuses (entity_id, status_id, name, raw) VALUES (:e, :i, :n, '{{}}')"),
                     {"e": st["ENTITY_ID"], "i": st["STATUS_ID"], "n": st["NAME"]})
    labels = load_labels(conn, s)
    sch.ensure_entity_table(conn, s, "deals", cols, entity="deal", entity_type_id=2, title="Deals",
                            version=schema_version(cols))
    page = rest(url, "crm.item.list", entityTypeId=2, useOriginalUfNames="Y", select=["*", "UF_*"],
                order={"id": "ASC"}, filter={">id": 0}, start=-1)["result"]["items"]
    assert load_records(conn, s, "deals", cols, page) == len(page)
    assert load_records(conn, s, "deals", cols, page) == 0  # unchanged rows are not rewritten
    first = page[0]
    got = conn.execute(text(f"SELECT opportunity, stage_id, stage_id_label, contact_ids, raw->>'title', "
                            f"{enum_col.name}, {enum_col.name}_label FROM {s}.deals WHERE id = :i"), {"i": first["id"]}).one()
    assert float(got[0]) == float(first["opportunity"])
    assert got[1] == first["stageId"]
    assert got[2] == labels.status("DEAL_STAGE", first["stageId"]) and got[2]
    assert [got[c] for c in range(7)] != []  # typed row agrees with the Python reading of the same record:
    expected = to_row(first, cols, labels)
    assert got[5] == expected[enum_col.name] and got[6] == expected[f"{enum_col.name}_label"]
    assert got[3] == first["contactIds"]
    assert got[4] == first["title"]
    if first[enum_col.source] is not None:
        assert got[6] == dict(enum_col.enum_items)[first[enum_col.source]]
    comment = conn.execute(text("SELECT col_description(CAST(:t AS regclass), attnum) FROM pg_attribute "
                                "WHERE attrelid = CAST(:t AS regclass) AND attname = 'opportunity'"), {"t": f"{s}.deals"}).scalar()
    assert comment == fields["opportunity"]["title"]
    assert delete_ids(conn, s, "deals", [first["id"]]) == 1


def test_schema_follows_new_and_retyped_fields_without_losing_data(db):
    conn = db.connection()
    s = sch.ensure_portal_schema(conn, 902)
    v1 = {"title": {"type": "string", "title": "Title"}, "UF_CRM_1": {"type": "string", "title": "Rooms"}}
    cols1 = columns_for(v1)
    sch.ensure_entity_table(conn, s, "leads", cols1, entity="lead", entity_type_id=1, title="Leads", version="1")
    rec = {"id": 7, "title": "A", "UF_CRM_1": "3"}
    load_records(conn, s, "leads", cols1, [rec])
    v2 = {"title": {"type": "string", "title": "Name"}, "UF_CRM_1": {"type": "integer", "title": "Rooms"},
          "UF_CRM_2": {"type": "boolean", "title": "Pets"}}
    cols2 = columns_for(v2)
    retyped = sch.ensure_entity_table(conn, s, "leads", cols2, entity="lead", entity_type_id=1, title="Leads", version="2")
    assert retyped == ["uf_crm_1"]
    rebuild_columns(conn, s, "leads", cols2)  # re-derived from raw
    row = conn.execute(text(f"SELECT title, uf_crm_1, uf_crm_2 FROM {s}.leads WHERE id = 7")).one()
    assert row == ("A", 3, None)
    title = conn.execute(text(f"SELECT title FROM {s}.fields WHERE table_name='leads' AND column_name='title'")).scalar()
    assert title == "Name"
    v3 = {"title": {"type": "string", "title": "Name"}}
    sch.ensure_entity_table(conn, s, "leads", columns_for(v3), entity="lead", entity_type_id=1, title="Leads", version="3")
    kept = conn.execute(text(f"SELECT uf_crm_1 FROM {s}.leads WHERE id = 7")).scalar()
    assert kept == 3  # a field removed in the portal keeps its column and data
    assert conn.execute(text(f"SELECT removed FROM {s}.fields WHERE column_name='uf_crm_1'")).scalar() is True


def test_reader_role_reads_only_its_schema(db):
    conn = db.connection()
    s1 = sch.ensure_portal_schema(conn, 903)
    s2 = sch.ensure_portal_schema(conn, 904)
    conn.exec_driver_sql(f"CREATE TABLE {s2}.secret (x int)")
    conn.exec_driver_sql(f"INSERT INTO {s2}.secret VALUES (1)")
    role = sch.reader_role(conn, 903)
    conn.exec_driver_sql("SAVEPOINT r")
    conn.exec_driver_sql(f'SET LOCAL ROLE "{role}"')
    assert conn.exec_driver_sql(f"SELECT count(*) FROM {s1}.statuses").scalar() == 0
    with pytest.raises(Exception, match="permission denied"):
        conn.exec_driver_sql(f"SELECT * FROM {s2}.secret")
    conn.exec_driver_sql("ROLLBACK TO SAVEPOINT r")


@pytest.mark.parametrize("fn, value, expected", [
    ("to_bigint", "42", 42), ("to_bigint", " -7 ", -7), ("to_bigint", "3.9", 3), ("to_bigint", "abc", None),
    ("to_bigint", "", None), ("to_bigint", "99999999999999999999", None), ("to_bigint", "NaN", None),
    ("to_numeric", "585000", 585000), ("to_numeric", "31.5", 31.5), ("to_numeric", "NaN", None),
    ("to_numeric", "12 apples", None),
    ("to_bool", "Y", True), ("to_bool", "n", False), ("to_bool", "1", True), ("to_bool", "maybe", None),
    ("to_date", "2026-03-11T03:00:00+03:00", "2026-03-11"), ("to_date", "2026-02-30", None),
    ("to_date", "today", None), ("to_date", "", None),
    ("to_ts", "2026-03-11T13:27:32+03:00", "2026-03-11T10:27:32+00:00"), ("to_ts", "2026-13-01T00:00:00+03:00", None),
    ("to_ts", "now", None), ("to_ts", "2026-02-30T10:00:00+03:00", None),
])
def test_forgiving_casts_never_raise(db, fn, value, expected):
    # Applied to a column, as the loader does (a literal argument would be constant-folded at plan time).
    got = db.execute(text(f"SELECT hub24.{fn}(v) FROM (SELECT CAST(:v AS text) AS v OFFSET 0) x"), {"v": value}).scalar()
    if hasattr(got, "isoformat"):
        got = got.astimezone(__import__("datetime").timezone.utc).isoformat() if hasattr(got, "astimezone") and fn == "to_ts" else got.isoformat()
    if got is not None and fn == "to_numeric":
        got = float(got)
    assert got == expected
