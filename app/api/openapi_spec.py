"""The OpenAPI 3.1 description of /api/v1 and /health, as data.

`tests/readapi/test_openapi.py` keeps it true: every route in the app's url_map under /api/v1 (and /health)
is described here, every path described here exists, and every example request validates against its
schema and is answered with a documented status and body.
"""
from __future__ import annotations

from typing import Any

OBJ: dict[str, Any] = {"type": "object"}
ERR = {"$ref": "#/components/schemas/Error"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def q(name: str, schema: dict, description: str, example: Any = None, *, required: bool = False) -> dict:
    """A query parameter."""
    p = {"name": name, "in": "query", "required": required, "description": description, "schema": schema}
    if example is not None:
        p["example"] = example
    return p


def path_param(name: str, schema: dict, example: Any, description: str = "") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "example": example,
            "description": description}


def resp(description: str, schema: dict | None = None) -> dict:
    r: dict[str, Any] = {"description": description}
    if schema is not None:
        r["content"] = {"application/json": {"schema": schema}}
    return r


def errors(*codes: int) -> dict[str, dict]:
    text = {400: "Malformed parameter; the message names it.",
            401: "No token, an unknown or revoked API key, an expired frame token, or Hub24 no longer installed.",
            403: "wrong_portal (the request names another portal) or missing_scope.",
            404: "Unknown entity, record or job.",
            409: "mirror_empty (no sync has finished yet) or authorization_lost (reinstall Hub24).",
            502: "Bitrix24 answered an error."}
    return {str(c): resp(text[c], ERR) for c in codes}


def op(summary: str, tag: str, responses: dict, *, params: list | None = None, body: dict | None = None,
       body_example: Any = None, auth: str = "api") -> dict:
    """One operation; `auth` is "api" (API key or frame token), "frame" (frame token only) or "none"."""
    o: dict[str, Any] = {"summary": summary, "tags": [tag], "parameters": params or [], "responses": responses}
    o["security"] = {"api": [{"apiKey": []}, {"frameToken": []}], "frame": [{"frameToken": []}], "none": []}[auth]
    if body is not None:
        content: dict[str, Any] = {"schema": body}
        if body_example is not None:
            content["example"] = body_example
        o["requestBody"] = {"required": True, "content": {"application/json": content}}
    return o


ENTITY = path_param("entity", {"type": "string", "pattern": "^(deals|leads|contacts|companies|sp_[0-9]+)$"}, "deals",
                    "A mirrored entity table (GET /api/v1/crm lists them).")
PAGING = [q("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Rows per page.", 20),
          q("offset", {"type": "integer", "minimum": 0, "maximum": 1000000, "default": 0}, "Rows to skip.", 0)]
PORTAL = q("portal", {"type": "string"}, "Optional. A portal id, member_id or domain; must be the token's own "
           "portal, any other is refused with 403 wrong_portal.")
FILTERS = {"name": "filters", "in": "query", "style": "form", "explode": True,
           "description": "<column>=value or <column>[op]=value, op one of eq, ne, gt, gte, lt, lte, in "
                          "(comma-separated), contains. Columns and types: GET /api/v1/crm/{entity}/fields. "
                          "Values are typed by the column (numbers, true/false, YYYY-MM-DD, ISO date-times).",
           "schema": {"type": "object", "additionalProperties": {"type": "string"}},
           "example": {"opportunity[gte]": "1000", "stage_semantic_id": "P"}}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "message"],
              "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                             "what_to_do": {"type": "string"}}},
    "PageMeta": {"type": "object", "required": ["limit", "offset", "total", "returned"],
                 "properties": {"limit": {"type": "integer"}, "offset": {"type": "integer"},
                                "total": {"type": "integer"}, "returned": {"type": "integer"},
                                "next_offset": {"type": ["integer", "null"]},
                                "next_cursor": {"type": ["string", "null"]}, "entity": {"type": "string"},
                                "sort": {"type": "array", "items": {"type": "string"}},
                                "warning": {"type": "string"}}},
    "Record": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}},
               "additionalProperties": True},
    "RecordPage": {"type": "object", "required": ["data", "meta"],
                   "properties": {"data": {"type": "array", "items": ref("Record")}, "meta": ref("PageMeta")}},
    "Entity": {"type": "object", "required": ["entity", "entity_type_id", "records", "synced"],
               "properties": {"entity": {"type": "string"}, "entity_type_id": {"type": "integer"},
                              "title": {"type": "string"}, "records": {"type": "integer"},
                              "synced": {"type": "boolean"}, "last_full_sync": {"type": ["string", "null"]}}},
    "Column": {"type": "object", "required": ["column", "type", "title", "filterable"],
               "properties": {"column": {"type": "string"}, "type": {"type": "string"}, "title": {"type": "string"},
                              "bitrix24_field": {"type": ["string", "null"]}, "filterable": {"type": "boolean"}}},
    "Count": {"type": "object", "required": ["records"], "additionalProperties": True,
              "properties": {"records": {"type": "integer"}, "amount": {"type": ["number", "null"]}}},
    "StatsSummary": {"type": "object", "required": ["entity", "total", "by_stage", "by_manager", "by_department",
                                                    "amounts", "activity"],
                     "properties": {"entity": {"type": "string"}, "total": ref("Count"),
                                    "by_stage": {"type": ["array", "null"], "items": ref("Count")},
                                    "by_manager": {"type": ["array", "null"], "items": ref("Count")},
                                    "by_department": {"type": ["array", "null"], "items": ref("Count")},
                                    "amounts": {"type": ["array", "null"], "items": ref("Count")},
                                    "activity": {"type": ["object", "null"]}, "period": OBJ, "meta": OBJ}},
    "User": {"type": "object", "required": ["id", "bitrix_user_id", "email", "active", "role", "has_password"],
             "properties": {"id": {"type": "integer"}, "bitrix_user_id": {"type": ["integer", "null"]},
                            "name": {"type": "string"}, "last_name": {"type": "string"},
                            "full_name": {"type": "string"}, "email": {"type": ["string", "null"]},
                            "position": {"type": ["string", "null"]},
                            "departments": {"type": "array", "items": {"type": "integer"}},
                            "active": {"type": "boolean"}, "role": {"enum": ["admin", "manager", "employee"]},
                            "is_portal_admin": {"type": "boolean"}, "has_password": {"type": "boolean"},
                            "created_at": {"type": "string"}, "updated_at": {"type": "string"},
                            "deactivated_at": {"type": ["string", "null"]}}},
    "Department": {"type": "object", "required": ["id", "name", "parent_id", "path", "depth"],
                   "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                                  "parent_id": {"type": ["integer", "null"]},
                                  "head_bitrix_user_id": {"type": ["integer", "null"]},
                                  "head_user_id": {"type": ["integer", "null"]}, "sort": {"type": ["integer", "null"]},
                                  "active": {"type": "boolean"}, "path": {"type": "array", "items": {"type": "integer"}},
                                  "depth": {"type": "integer"}, "members": {"type": "integer"},
                                  "children": {"type": "array", "items": ref("Department")}}},
    "DirectoryRun": {"type": "object", "required": ["run_id", "status", "report"],
                     "properties": {"run_id": {"type": "integer"}, "portal_id": {"type": "integer"},
                                    "trigger": {"type": "string"}, "status": {"enum": ["running", "succeeded", "failed"]},
                                    "started_at": {"type": ["string", "null"]}, "finished_at": {"type": ["string", "null"]},
                                    "error": {"type": ["string", "null"]},
                                    "report": {"type": "object", "description": "created, updated, deactivated, "
                                               "skipped (with reasons), conflicts, warnings, departments, counts"}}},
    "DirectorySettings": {"type": "object", "properties": {
        "daily_at": {"type": ["string", "null"], "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
        "daily_at_is_default": {"type": "boolean"},
        "roles_without_email": {"type": "array", "items": {"enum": ["admin", "manager", "employee"]}}},
        "additionalProperties": False},
}


def _paths() -> dict[str, Any]:
    crm, dir_, sync, misc = "CRM mirror", "Directory", "Sync", "Service"
    data_of = lambda s: {"type": "object", "required": ["data"], "properties": {"data": s}}  # noqa: E731
    return {
        "/health": {"get": op("Liveness: PostgreSQL, Redis, workers, scheduler, portals", misc,
                              {"200": resp("Healthy", OBJ), "503": resp("Unhealthy, with reasons", OBJ)}, auth="none")},
        "/api/v1/openapi.json": {"get": op("This description", misc, {"200": resp("OpenAPI 3.1", OBJ)}, auth="none")},
        "/api/v1/frame/session": {"get": op("Who the frame token belongs to", misc,
                                             {"200": resp("Portal, placement, user, expiry", OBJ), **errors(401)},
                                             auth="frame")},
        "/api/v1/crm": {"get": op("Mirrored entities with record counts", crm,
                                  {"200": resp("Entities", data_of({"type": "array", "items": ref("Entity")})),
                                   **errors(401, 403, 409)}, params=[PORTAL])},
        "/api/v1/crm/{entity}": {"get": op("Records with filters, sorting and paging", crm, {
            "200": resp("A page of records", ref("RecordPage")), **errors(400, 401, 403, 404, 409)},
            params=[ENTITY, *PAGING, q("cursor", {"type": "string"}, "From meta.next_cursor (id order only)."),
                    q("sort", {"type": "string", "pattern": "^-?[a-z_][a-z0-9_]*(,-?[a-z_][a-z0-9_]*)*$"},
                      "Columns, '-' for descending; id is always the last key.", "-opportunity,id"),
                    q("fields", {"type": "string"}, "Columns to return (default all).", "id,title,stage_id,opportunity"),
                    PORTAL, FILTERS])},
        "/api/v1/crm/{entity}/fields": {"get": op("Columns of an entity: names, types, Bitrix24 titles", crm, {
            "200": resp("Columns", data_of({"type": "array", "items": ref("Column")})), **errors(401, 403, 404, 409)},
            params=[ENTITY, PORTAL])},
        "/api/v1/crm/{entity}/{record_id}": {"get": op("One record with its raw Bitrix24 form", crm, {
            "200": resp("The record", data_of(ref("Record"))), **errors(401, 403, 404, 409)},
            params=[ENTITY, path_param("record_id", {"type": "integer", "minimum": 1}, 1), PORTAL])},
        "/api/v1/stats/summary": {"get": op("Statistics: by stage, manager, department; amounts; activity", crm, {
            "200": resp("Summary", ref("StatsSummary")), **errors(400, 401, 403, 404, 409)},
            params=[q("entity", {"type": "string"}, "Entity table (default deals).", "deals"),
                    q("from", {"type": "string", "format": "date"}, "Created on or after.", "2020-01-01"),
                    q("to", {"type": "string", "format": "date"}, "Created before.", "2100-01-01"),
                    q("bucket", {"enum": ["day", "week", "month", "quarter", "year"]}, "Activity bucket.", "month"),
                    PORTAL])},
        "/api/v1/users": {"get": op("Hub24 users of the portal", dir_, {
            "200": resp("A page of users", {"type": "object", "required": ["data", "meta"], "properties": {
                "data": {"type": "array", "items": ref("User")}, "meta": ref("PageMeta")}}),
            **errors(400, 401, 403, 409)},
            params=[q("active", {"type": "boolean"}, "Only active (true) or inactive (false) users.", True),
                    q("role", {"enum": ["admin", "manager", "employee"]}, "Only this role.", "employee"),
                    q("department", {"type": "integer", "minimum": 1}, "Bitrix24 department id.", 1),
                    q("include_subdepartments", {"type": "boolean"}, "With department: its whole subtree.", True),
                    q("q", {"type": "string", "maxLength": 100}, "Substring of name or e-mail."), *PAGING, PORTAL])},
        "/api/v1/users/{user_id}": {"get": op("One Hub24 user", dir_, {
            "200": resp("The user", data_of(ref("User"))), **errors(401, 403, 404, 409)},
            params=[path_param("user_id", {"type": "integer", "minimum": 1}, 1), PORTAL])},
        "/api/v1/users/sync": {"post": op("Queue a directory sync", dir_, {
            "202": resp("Queued", {"type": "object", "required": ["job_id", "status"], "properties": {
                "job_id": {"type": "string"}, "status": {"type": "string"}, "poll": {"type": "string"}}}),
            **errors(401, 403, 409)}, params=[PORTAL])},
        "/api/v1/users/sync/runs": {"get": op("Latest directory sync runs with reports", dir_, {
            "200": resp("Runs", data_of({"type": "array", "items": ref("DirectoryRun")})), **errors(400, 401, 403)},
            params=[q("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "Runs to show.", 5), PORTAL])},
        "/api/v1/users/sync/{job_id}": {"get": op("A directory sync job and, when finished, its report", dir_, {
            "200": resp("The job", {"type": "object", "required": ["job_id", "status"], "properties": {
                "job_id": {"type": "string"}, "status": {"type": "string"},
                "result": {"oneOf": [ref("DirectoryRun"), {"type": "null"}]}}}), **errors(400, 401, 403, 404)},
            params=[path_param("job_id", {"type": "string", "maxLength": 128}, "users-sync-1"), PORTAL])},
        "/api/v1/users/settings": {
            "get": op("Directory settings", dir_, {"200": resp("Settings", ref("DirectorySettings")),
                                                   **errors(401, 403)}, params=[PORTAL]),
            "put": op("Change directory settings", dir_, {"200": resp("Settings", ref("DirectorySettings")),
                                                          **errors(400, 401, 403)},
                      body=ref("DirectorySettings"), body_example={"daily_at": "04:15", "roles_without_email": ["employee"]},
                      params=[PORTAL])},
        "/api/v1/departments": {"get": op("Departments, flat, with parent, head, path, members", dir_, {
            "200": resp("Departments", data_of({"type": "array", "items": ref("Department")})),
            **errors(401, 403, 409)}, params=[PORTAL])},
        "/api/v1/departments/tree": {"get": op("Departments as a tree", dir_, {
            "200": resp("Roots with nested children", data_of({"type": "array", "items": ref("Department")})),
            **errors(401, 403, 409)}, params=[PORTAL])},
        **_sync_paths(sync),
        **_dashboard_paths(),
        **_chart_paths(),
    }


def _sync_paths(tag: str) -> dict[str, Any]:
    """app/api/sync.py: control and watch the CRM mirror."""
    hooks = {"200": resp("What the portal answered", OBJ), **errors(401), "409": resp("Not for webhook portals", ERR),
             "502": resp("Bitrix24 error", ERR)}
    return {
        "/api/v1/sync/start/{entity}": {"post": op("Queue syncs of one entity or all", tag, {
            "202": resp("Queued jobs", OBJ), **errors(400, 401, 404), "409": resp("Sync paused", ERR)},
            params=[path_param("entity", {"type": "string", "pattern": "^(all|[a-z_0-9]+)$"}, "deal")],
            body={"type": "object", "properties": {"sync_type": {"enum": ["full", "incremental", "reconcile"]}}},
            body_example={"sync_type": "incremental"})},
        "/api/v1/sync/status": {"get": op("Runs, counters and queued jobs", tag, {"200": resp("Status", OBJ),
                                                                                  **errors(401)})},
        "/api/v1/sync/config": {
            "get": op("Per-entity sync settings", tag, {"200": resp("Settings", OBJ), **errors(401)}),
            "put": op("Change per-entity sync settings", tag, {"200": resp("Settings", OBJ), **errors(400, 401)},
                      body={"type": "object", "additionalProperties": {"type": "object"}},
                      body_example={"deal": {"interval_s": 600, "realtime": True}})},
        "/api/v1/webhooks/register": {"post": op("Bind the portal's CRM events", tag, hooks),
                                      "delete": op("Unbind the portal's CRM events", tag, hooks)},
        "/api/v1/webhooks/unregister": {"post": op("Unbind the portal's CRM events", tag, hooks),
                                        "delete": op("Unbind the portal's CRM events", tag, hooks)},
        "/api/v1/webhooks/registered": {"get": op("Event bindings the portal reports", tag, hooks)},
    }


def _dashboard_paths() -> dict[str, Any]:
    """app/api/dashboards.py (frame pages' dashboards and settings), described from its views."""
    t = "Dashboards"
    ok = lambda d, code="200": {code: resp(d, OBJ), **errors(400, 401), "403": resp("Not allowed", ERR),  # noqa: E731
                                "404": resp("Not found", ERR)}
    did = path_param("dashboard_id", {"type": "integer", "minimum": 1}, 1)
    wid = path_param("widget_id", {"type": "integer", "minimum": 1}, 1)
    body = {"type": "object"}
    return {
        "/api/v1/dashboards": {"get": op("Dashboards the frame user may see", t, ok("Dashboards"), auth="frame"),
                               "post": op("Create a dashboard", t, ok("Created", "201"), body=body,
                                          body_example={"title": "Sales"}, auth="frame")},
        "/api/v1/dashboards/{dashboard_id}": {
            "get": op("One dashboard with widgets", t, ok("Dashboard"), params=[did], auth="frame"),
            "put": op("Change a dashboard", t, ok("Dashboard"), params=[did], body=body, body_example={"title": "Sales"},
                      auth="frame"),
            "patch": op("Change a dashboard", t, ok("Dashboard"), params=[did], body=body,
                        body_example={"title": "Sales"}, auth="frame"),
            "delete": op("Delete a dashboard", t, {"204": resp("Deleted"), **errors(401, 404)}, params=[did],
                         auth="frame")},
        "/api/v1/dashboards/{dashboard_id}/widgets": {"post": op("Add a widget", t, ok("Created", "201"), params=[did],
                                                                 body=body, body_example={"title": "Deals"},
                                                                 auth="frame")},
        "/api/v1/dashboards/{dashboard_id}/widgets/{widget_id}": {
            "put": op("Change a widget", t, ok("Widget"), params=[did, wid], body=body, body_example={"title": "Deals"},
                      auth="frame"),
            "patch": op("Change a widget", t, ok("Widget"), params=[did, wid], body=body,
                        body_example={"title": "Deals"}, auth="frame"),
            "delete": op("Delete a widget", t, {"204": resp("Deleted"), **errors(401, 404)}, params=[did, wid],
                         auth="frame")},
        "/api/v1/dashboards/recent": {"get": op("Recent questions", t, ok("Questions"), auth="frame"),
                                      "post": op("Remember a question", t, ok("Stored", "201"), body=body,
                                                 body_example={"question": "Deals by stage"}, auth="frame")},
        "/api/v1/dashboards/catalog": {"get": op("Mirrored tables for the chart builder", t, ok("Catalog"),
                                                 auth="frame")},
        "/api/v1/settings": {"get": op("Portal settings (admins)", t, ok("Settings"), auth="frame"),
                             "put": op("Change portal settings (admins)", t, ok("Settings"), body=body,
                                       body_example={}, auth="frame")},
    }


def _chart_paths() -> dict[str, Any]:
    """app/api/charts.py (AI charts, builder, data dictionary), described from its views; its module may
    replace this with its own OPENAPI_PATHS."""
    t = "Charts"
    bad = {**errors(400, 401), "404": resp("Not found", ERR), "409": resp("Not possible now", ERR)}
    jid = path_param("job_id", {"type": "string", "maxLength": 128}, "chart-1")
    body = {"type": "object"}
    post = lambda summary, example, code="200": {"post": op(summary, t, {code: resp("Result", OBJ), **bad},  # noqa: E731
                                                            body=body, body_example=example)}
    return {
        "/api/v1/schema.md": {"get": op("Data dictionary of the mirrored tables (Markdown)", t,
                                        {"200": resp("text/markdown"), **errors(401)})},
        "/api/v1/charts/status": {"get": op("Whether AI charts are available", t, {"200": resp("Status", OBJ),
                                                                                   **errors(401)})},
        "/api/v1/charts/ask": post("Ask a question; queues the AI chart job", {"question": "Deals by stage"}, "202"),
        "/api/v1/charts/jobs/{job_id}": {"get": op("An AI chart job and its result", t, {"200": resp("Job", OBJ), **bad},
                                                   params=[jid])},
        "/api/v1/charts/jobs/{job_id}.csv": {"get": op("An AI chart job's rows as CSV", t, {"200": resp("text/csv"),
                                                                                             **bad}, params=[jid])},
        "/api/v1/charts/build": post("Manual chart builder", {"entity": "deals"}),
        "/api/v1/charts/run": post("Re-run a saved chart's checked SQL", {"sql": "SELECT 1"}),
        "/api/v1/charts/render": post("Render rows as an ECharts option", {"rows": []}),
        "/api/v1/charts/export.csv": post("Export a chart's rows as CSV", {"entity": "deals"}),
        "/api/v1/charts/fields": {"get": op("Columns the builder offers", t, {"200": resp("Fields", OBJ), **bad})},
        "/api/v1/charts/questions": {"get": op("Questions asked before", t, {"200": resp("Questions", OBJ),
                                                                            **errors(401)})},
    }


def build_spec(server_url: str = "") -> dict[str, Any]:
    """The whole description; `server_url` becomes its one server entry."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hub24 API", "version": "1",
                 "description": "Each token reads its own portal only: an API key (`hub24_...`, "
                                "`flask` creates them) or a frame token from a Bitrix24 page. Errors are "
                                "`{error, message, what_to_do}`."},
        "servers": [{"url": server_url or "/"}],
        "paths": _paths(),
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer", "description": "A portal API key: hub24_..."},
            "frameToken": {"type": "http", "scheme": "bearer", "description": "The signed token of a frame page"}}},
    }
