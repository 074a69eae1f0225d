"""The CRM read API against a mirrored sandbox portal: answers agree with SQL on the mirror, bad input is a 400."""
from decimal import Decimal

from sqlalchemy import text

from app.api.readapi_query import decode_cursor


def sql(db, portal, query, **params):
    return db.execute(text(query.replace("{s}", f"portal_{portal.id}")), params).all()


def num(v):
    return float(v) if isinstance(v, Decimal) else v


def test_entities_and_fields(client, mirror, headers, db):
    r = client.get("/api/v1/crm", headers=headers)
    assert r.status_code == 200, r.get_json()
    got = {e["entity"]: e["records"] for e in r.get_json()["data"]}
    for table, count in got.items():
        assert sql(db, mirror, f'SELECT count(*) FROM {{s}}."{table}"')[0][0] == count
    assert {"deals", "leads", "contacts", "companies"} <= set(got) and any(t.startswith("sp_") for t in got)
    cols = {c["column"]: c for c in client.get("/api/v1/crm/deals/fields", headers=headers).get_json()["data"]}
    assert cols["opportunity"]["type"] == "numeric" and cols["stage_id_label"]["filterable"]
    assert cols["contact_ids"]["type"] == "bigint[]"


def test_filters_sorting_and_paging_agree_with_sql(client, mirror, headers, db):
    r = client.get("/api/v1/crm/deals?opportunity[gte]=1000&stage_semantic_id[ne]=F&sort=-opportunity"
                   "&fields=id,title,opportunity,stage_id_label&limit=7&offset=2", headers=headers)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    want = sql(db, mirror, "SELECT id, title, opportunity, stage_id_label FROM {s}.deals WHERE opportunity >= 1000 "
                           "AND stage_semantic_id <> 'F' ORDER BY opportunity DESC NULLS LAST, id LIMIT 7 OFFSET 2")
    assert [(d["id"], d["title"], d["opportunity"], d["stage_id_label"]) for d in body["data"]] == \
        [(i, t, num(o), lab) for i, t, o, lab in want]
    total = sql(db, mirror, "SELECT count(*) FROM {s}.deals WHERE opportunity >= 1000 AND stage_semantic_id <> 'F'")
    assert body["meta"]["total"] == total[0][0] and set(body["data"][0]) == {"id", "title", "opportunity", "stage_id_label"}

    # in, contains (text, any case), dates, booleans, array columns
    stage = sql(db, mirror, "SELECT stage_id FROM {s}.deals GROUP BY 1 ORDER BY count(*) DESC LIMIT 2")
    stages = ",".join(s for (s,) in stage)
    r = client.get(f"/api/v1/crm/deals?stage_id[in]={stages}&limit=500&fields=id", headers=headers).get_json()
    assert [d["id"] for d in r["data"]] == [i for (i,) in sql(db, mirror, "SELECT id FROM {s}.deals WHERE stage_id = "
                                                                     "ANY(:s) ORDER BY id", s=stages.split(","))]
    word = sql(db, mirror, "SELECT title FROM {s}.companies ORDER BY id LIMIT 1")[0][0].split()[0]
    r = client.get(f"/api/v1/crm/companies?title[contains]={word.upper()}&limit=500&fields=id", headers=headers).get_json()
    assert [d["id"] for d in r["data"]] == [i for (i,) in sql(db, mirror, "SELECT id FROM {s}.companies WHERE title "
                                                                     "ILIKE :w ORDER BY id", w=f"%{word}%")]
    r = client.get("/api/v1/crm/deals?created_time[lt]=2024-06-01T00:00:00Z&opened=true&fields=id&limit=500",
                   headers=headers).get_json()
    assert [d["id"] for d in r["data"]] == [i for (i,) in sql(db, mirror, "SELECT id FROM {s}.deals WHERE created_time "
                                                                     "< '2024-06-01Z' AND opened ORDER BY id")]
    cid = sql(db, mirror, "SELECT contact_ids[1] FROM {s}.deals WHERE cardinality(contact_ids) > 0 LIMIT 1")[0][0]
    r = client.get(f"/api/v1/crm/deals?contact_ids[contains]={cid}&fields=id&limit=500", headers=headers).get_json()
    assert [d["id"] for d in r["data"]] == [i for (i,) in sql(db, mirror, "SELECT id FROM {s}.deals WHERE :c = "
                                                                     "ANY(contact_ids) ORDER BY id", c=cid)]


def test_cursor_paging_walks_every_record_once(client, mirror, headers, db):
    seen, cursor = [], None
    while True:
        url = "/api/v1/crm/contacts?limit=17&fields=id&sort=-id" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url, headers=headers).get_json()
        seen += [d["id"] for d in body["data"]]
        cursor = body["meta"]["next_cursor"]
        if not cursor:
            break
        assert decode_cursor(cursor)[1] is True
    assert seen == [i for (i,) in sql(db, mirror, "SELECT id FROM {s}.contacts ORDER BY id DESC")]


def test_one_record_and_smart_process_items(client, mirror, headers, db):
    did = sql(db, mirror, "SELECT id, title FROM {s}.deals ORDER BY id LIMIT 1")[0]
    r = client.get(f"/api/v1/crm/deals/{did[0]}", headers=headers)
    assert r.status_code == 200 and r.get_json()["data"]["title"] == did[1] and "raw" in r.get_json()["data"]
    assert client.get("/api/v1/crm/deals/99999999", headers=headers).status_code == 404
    sp = sql(db, mirror, "SELECT table_name FROM {s}.entities WHERE entity_type_id >= 128 ORDER BY 1 LIMIT 1")[0][0]
    body = client.get(f"/api/v1/crm/{sp}?limit=500&fields=id", headers=headers).get_json()
    assert [d["id"] for d in body["data"]] == [i for (i,) in sql(db, mirror, f'SELECT id FROM {{s}}."{sp}" ORDER BY id')]


def test_malformed_parameters_are_400_with_a_message(client, mirror, headers):
    cases = {
        "/api/v1/crm/deals?opportunity[gte]=lots": "opportunity[gte]: expected a number",
        "/api/v1/crm/deals?no_such_column=1": "unknown column 'no_such_column'",
        "/api/v1/crm/deals?title[like]=x": "unknown operator 'like'",
        "/api/v1/crm/deals?opened[gt]=true": "use eq or ne",
        "/api/v1/crm/deals?created_time=yesterday": "expected a date-time",
        "/api/v1/crm/deals?opportunity[contains]=5": "contains works on text columns",
        "/api/v1/crm/deals?contact_ids=5": "list column",
        "/api/v1/crm/deals?sort=-nope": "unknown column 'nope'",
        "/api/v1/crm/deals?limit=0": "limit must be from 1 to 500",
        "/api/v1/crm/deals?limit=ten": "limit must be a whole number",
        "/api/v1/crm/deals?offset=-5": "offset must be a whole number",
        "/api/v1/crm/deals?cursor=garbage": "cursor is not one this API handed out",
        "/api/v1/crm/deals?sort=title&cursor=eyJhZnRlciI6IDEsICJkZXNjIjogZmFsc2V9": "cursor paging follows id order",
        "/api/v1/crm/deals?fields=id,password": "unknown column 'password'",
        "/api/v1/crm/deals?id[in]=1,x": "expected a whole number",
        "/api/v1/crm/deals?probability=99999999999999999999": "expected a whole number",
        "/api/v1/crm/deals?uf_crm_1721244212=1": "cannot be filtered",
        "/api/v1/crm/deals?title%3Bdrop=1": "unknown parameter",
        "/api/v1/stats/summary?bucket=fortnight": "bucket must be one of",
        "/api/v1/stats/summary?from=2024-13-01": "from: expected a date",
        "/api/v1/stats/summary?from=2024-02-01&to=2024-01-01": "from must be earlier than to",
    }
    for url, words in cases.items():
        r = client.get(url, headers=headers)
        assert r.status_code == 400, (url, r.status_code, r.get_json())
        assert r.get_json()["error"] == "bad_request" and words in r.get_json()["message"], (url, r.get_json())
    r = client.get("/api/v1/crm/invoices", headers=headers)
    assert r.status_code == 404 and "deals" in r.get_json()["what_to_do"]
