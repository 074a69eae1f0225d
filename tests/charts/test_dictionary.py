"""The data dictionary: titles, types, list labels, stages per pipeline, relations; a bounded LLM form."""
from app.charts import catalog, dictionary
from app.charts.catalog import Catalog, ColumnInfo, TableInfo


def test_full_dictionary_names_titles_labels_stages_and_relations(app, db, mirrored):
    md = dictionary.markdown(catalog.load(db.connection(), mirrored.id))
    assert md.startswith(f"# Data dictionary of portal_{mirrored.id}")
    assert "| deals | Deals | 120 |" in md
    assert "| opportunity | opportunity | Amount | numeric |" in md
    assert "| uf_crm_1721244202 | UF_CRM_1721244202 | Area, m² | numeric |" in md
    # enumeration values with labels, the label column beside the id
    assert "values: 107 = Сайт, 108 = Звонок, 109 = Partner, 110 = Walk-in" in md
    assert "readable name in uf_crm_1721244206_label" in md
    # status lists and stage lists per pipeline, with won/lost semantics
    assert "list SOURCE: CALL = Call" in md
    assert "pipeline 1 “Аренда” (category_id = 1): `C1:NEW` New, `C1:VIEWING` Viewing" in md
    assert "`WON` Deal won (won/success)" in md and "`LOSE` Deal lost (lost/failure)" in md
    # relations
    for rel in ("deals.company_id → companies.id", "deals.contact_ids[] → contacts.id", "deals.assigned_by_id → users.id",
                "deals.category_id → categories.id", "deals.stage_id → statuses.status_id where statuses.family = 'DEAL_STAGE'",
                "item_contacts (table_name, entity_id)", "multifields (table_name, entity_id)", "users.departments[] → departments.id"):
        assert rel in md, rel
    assert "| raw |" in md  # the full form lists every column


def test_compact_form_drops_technical_and_empty_columns(app, db, mirrored):
    md = dictionary.markdown(catalog.load(db.connection(), mirrored.id), compact=True)
    assert "| raw |" not in md and "| synced_at |" not in md and "uf_crm_1721244212" not in md  # raw, stamps, files
    assert "| utm_source |" not in md  # never filled in this portal
    assert "| stage_id | Deal Stage | text |" in md and "| opportunity | Amount | numeric |" in md
    assert "`C1:VIEWING` Viewing" in md and "values: 107 = Сайт" in md
    assert len(md) <= dictionary.COMPACT_BUDGET


def _huge_catalog(n_fields: int = 600, n_items: int = 80) -> Catalog:
    cols = [ColumnInfo("id", "bigint", "ID", fill=1.0), ColumnInfo("stage_id", "text", "Stage", "stageId", "crm_status",
                                                                  status_type="DEAL_STAGE", fill=1.0)]
    for i in range(n_fields):
        cols.append(ColumnInfo(f"uf_crm_{i}", "bigint", f"Custom list field number {i} with a long title", f"UF_CRM_{i}",
                               "enumeration", enum=[(j, f"Value {j} of field {i}") for j in range(n_items)],
                               fill=(i % 10) / 10))
    tables = [TableInfo("deals", "Deals", "entity", 2, 100000, cols)]
    tables += [TableInfo(f"sp_{128 + k}", f"Process {k}", "entity", 128 + k, 10, cols[:60]) for k in range(10)]
    return Catalog(1, "portal_1", tables, {}, {}, "v1")


def test_compact_form_stays_within_budget_for_hundreds_of_fields():
    cat = _huge_catalog()
    full = dictionary.markdown(cat)
    compact = dictionary.markdown(cat, compact=True, budget=20_000)
    assert len(full) > 500_000 and len(compact) <= 20_000
    assert "| stage_id | Stage |" in compact  # core columns survive
    assert "Custom list field number 9 " in compact or "Custom list field number 19 " in compact  # the fullest fields win
    assert "Custom list field number 0 " not in compact  # always empty


def test_endpoint_serves_markdown_to_the_portal_only(app, db, client, mirrored):
    from app.api.auth import create_api_key

    key = create_api_key(mirrored, "t")
    db.commit()
    r = client.get("/api/v1/schema.md", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200 and r.mimetype == "text/markdown"
    assert "Канал продаж" in r.get_data(as_text=True)
    compact = client.get("/api/v1/schema.md?compact=1", headers={"Authorization": f"Bearer {key}"})
    assert len(compact.get_data()) < len(r.get_data())
    assert client.get("/api/v1/schema.md").status_code == 401


def test_schema_version_changes_with_stage_names(app, db, mirrored):
    from sqlalchemy import text

    v1 = catalog.version(db.connection(), mirrored.id)
    db.execute(text(f"UPDATE portal_{mirrored.id}.statuses SET name = 'Renamed' WHERE status_id = 'NEW' AND entity_id = 'DEAL_STAGE'"))
    assert catalog.version(db.connection(), mirrored.id) != v1
