"""CRM -> PostgreSQL: an exact, current copy of each portal's CRM in its own schema.

Decomposition (request, paginate, select records, cursor — then load):

* `entities`  — what is mirrored: one `EntitySpec` per CRM entity type (methods, id and modified fields).
* `columns`   — Bitrix24 field metadata (`crm.item.fields`) -> typed PostgreSQL columns with titles.
* `transform` — a Bitrix24 record -> a row for those columns (dates, Y/N, money, labels, multi-fields).
* `schema`    — the portal's schema, its read-only role, reference tables and entity tables that follow
                field changes without losing data.
* `load`      — streamed loading through a staging table and INSERT ... ON CONFLICT; deletions.
* `extract`   — reading from the portal through the gateway (keyset pages, batched reads by id).
* `engine`    — full (resumable), incremental (modification time with overlap), real-time (coalesced
                events) and reconciliation (id-set diff) runs, each recorded as a SyncRun.
"""
