"""/api/v1/charts/... and /api/v1/schema.md: AI charts, the manual builder, rendering, CSV (thin views).

Every call is scoped to the caller's portal (`api_auth_required`). Bad input is a 400 whose `message`
says what to send; a refused or failing query is a 400 with the guard's or PostgreSQL's reason; AI
switched off is a 409 `ai_disabled` saying how to turn it on. Never a traceback.
"""
from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select

from ..charts import ai, builder, catalog, dictionary, render, runner
from ..charts.errors import AiDisabled, BadSpec, ChartError, QueryTimeout
from ..charts.models import ChartQuestion
from ..db import db_session
from ..jobs import redis_connection
from .auth import api_auth_required

bp = Blueprint("charts_api", __name__, url_prefix="/api/v1")
MAX_RENDER_ROWS = 5000


def _error(status: int, code: str, message: str):
    return jsonify(error=code, message=message), status


def _body() -> dict | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _chart_error(exc: ChartError):
    if isinstance(exc, AiDisabled):
        return _error(409, exc.code, exc.message)
    if exc.code == "not_synced":
        return _error(409, exc.code, exc.message)
    if isinstance(exc, QueryTimeout):
        return _error(408, exc.code, exc.message)
    return _error(400, exc.code, exc.message)


def _user_id() -> int | None:
    frame = getattr(g, "frame", None)
    return getattr(frame, "user_id", None) if g.caller == "frame" else None


@bp.get("/schema.md")
@api_auth_required
def schema_md():
    compact = request.args.get("compact", "").lower() in ("1", "true", "yes")
    text, version = dictionary.for_portal(db_session().connection(), g.portal.id, compact=compact)
    resp = Response(text, mimetype="text/markdown")
    resp.headers["X-Schema-Version"] = version
    return resp


@bp.get("/charts/status")
@api_auth_required
def status():
    enabled, message, model = ai.ai_state(g.portal.id)
    return jsonify(ai={"enabled": enabled, "message": message, "model": model}, chart_types=list(render.CHART_TYPES),
                   aggregations=list(builder.AGGREGATIONS), buckets=list(builder.BUCKETS), filter_ops=list(builder.OPS))


@bp.post("/charts/ask")
@api_auth_required
def ask():
    body = _body()
    if body is None:
        return _error(400, "bad_request", 'Send a JSON object like {"question": "deals won per manager this quarter"}.')
    try:
        job = ai.start(g.portal.id, body.get("question"), _user_id())
    except ChartError as exc:
        return _chart_error(exc)
    return jsonify(job_id=job.id, status=job.get_status()), 202


def _own_job(job_id: str) -> Job | None:
    if not job_id or len(job_id) > 200:
        return None
    try:
        job = Job.fetch(job_id, connection=redis_connection())
    except NoSuchJobError:
        return None
    if job.meta.get("portal_id") != g.portal.id or not (job.func_name or "").endswith("charts.ai.answer_question"):
        return None
    return job


def _job_result(job: Job) -> dict | None:
    status = job.get_status()
    if status == "finished":
        return job.return_value() if hasattr(job, "return_value") else job.result
    if status in ("failed", "stopped", "canceled"):
        return {"error": "job_failed", "message": "The chart could not be made because of a problem on our side; "
                                                  "it has been logged. Try again in a moment."}
    return None


@bp.get("/charts/jobs/<job_id>")
@api_auth_required
def job_status(job_id: str):
    job = _own_job(job_id)
    if job is None:
        return _error(404, "not_found", "No such chart job for this portal (jobs are kept for a few minutes).")
    meta = {k: v for k, v in job.meta.items() if k in ("progress", "attempt")}
    return jsonify(job_id=job.id, status=job.get_status(), meta=meta, result=_job_result(job))


def _csv_response(result: runner.Result, name: str) -> Response:
    resp = Response("\ufeff" + render.to_csv(result), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return resp


@bp.get("/charts/jobs/<job_id>.csv")
@api_auth_required
def job_csv(job_id: str):
    job = _own_job(job_id)
    result = _job_result(job) if job is not None else None
    if not result or result.get("error"):
        return _error(404, "not_found", "No finished chart for this job.")
    return _csv_response(runner.Result(result.get("columns") or [], result.get("kinds") or [], result.get("rows") or []), "chart")


def _build(body: dict) -> tuple[builder.Built, runner.Result]:
    conn = db_session().connection()
    built = builder.build_sql(catalog.load(conn, g.portal.id, measure_fill=False), body)
    return built, runner.execute(conn, g.portal.id, built.sql, built.params, max_rows=built.limit)


@bp.post("/charts/build")
@api_auth_required
def build():
    body = _body()
    if body is None:
        return _error(400, "bad_request", 'Send a JSON object like {"entity": "deals", "dimension": "stage_id_label", '
                                          '"aggregation": "count", "chart_type": "bar"}.')
    try:
        built, result = _build(body)
        option = render.option(built.spec, result)
    except ChartError as exc:
        return _chart_error(exc)
    return jsonify(result={"title": built.spec["title"], "explanation": "Built with the chart builder.",
                           "sql": built.sql, "params": built.params, "chart_type": built.spec["chart_type"],
                           "spec": built.spec, "option": option, **result.as_dict()})


def _chart_spec(body: dict) -> dict:
    spec = body.get("chart") or {}
    if not isinstance(spec, dict):
        raise BadSpec('chart must be an object like {"chart_type": "bar", "x": "stage", "y": ["deals"]}.')
    return spec


@bp.post("/charts/run")
@api_auth_required
def run_sql():
    """Run saved or edited SQL (guarded) and draw it: what a dashboard refresh needs without the LLM."""
    body = _body()
    if body is None or not isinstance(body.get("sql"), str):
        return _error(400, "bad_request", 'Send {"sql": "SELECT ...", "chart": {"chart_type": "bar", "x": ..., "y": [...]}}.')
    try:
        spec = _chart_spec(body)
        result = runner.run_guarded(db_session().connection(), g.portal.id, body["sql"])
        option = render.option(spec, result)
    except ChartError as exc:
        return _chart_error(exc)
    return jsonify(result={"title": spec.get("title") or "Chart", "explanation": body.get("explanation") or "",
                           "sql": result.sql, "chart_type": render.normalize_type(spec.get("chart_type")), "spec": spec,
                           "option": option, **result.as_dict()})


@bp.post("/charts/render")
@api_auth_required
def render_rows():
    """Redraw rows the page already has with another chart spec (no query)."""
    body = _body()
    cols, rows = (body or {}).get("columns"), (body or {}).get("rows")
    if body is None or not isinstance(cols, list) or not isinstance(rows, list) or len(rows) > MAX_RENDER_ROWS \
            or not all(isinstance(c, str) for c in cols) or not all(isinstance(r, list) and len(r) == len(cols) for r in rows):
        return _error(400, "bad_request", f"Send columns (names), rows (lists of the same length, at most {MAX_RENDER_ROWS}) "
                                          "and chart {chart_type, x, y, series, title}.")
    kinds = body.get("kinds")
    if not (isinstance(kinds, list) and len(kinds) == len(cols)):
        kinds = ["number" if rows and all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in rows if r[i] is not None)
                 else "text" for i in range(len(cols))]
    try:
        option = render.option(_chart_spec(body), runner.Result(cols, kinds, rows))
    except ChartError as exc:
        return _chart_error(exc)
    return jsonify(option=option)


@bp.post("/charts/export.csv")
@api_auth_required
def export_csv():
    """CSV of a query's rows: {"sql": "..."} (guarded) or {"build": {builder spec}}."""
    body = _body()
    if body is None or not (isinstance(body.get("sql"), str) or isinstance(body.get("build"), dict)):
        return _error(400, "bad_request", 'Send {"sql": "SELECT ..."} or {"build": {builder spec}}.')
    try:
        if isinstance(body.get("build"), dict):
            _, result = _build(body["build"])
        else:
            result = runner.run_guarded(db_session().connection(), g.portal.id, body["sql"])
    except ChartError as exc:
        return _chart_error(exc)
    return _csv_response(result, "chart")


@bp.get("/charts/fields")
@api_auth_required
def fields():
    return jsonify(dictionary.fields_json(catalog.load(db_session().connection(), g.portal.id, measure_fill=False)))


@bp.get("/charts/questions")
@api_auth_required
def questions():
    """The portal's latest AI questions (the caller's own for a frame with a user) and how they ended."""
    q = select(ChartQuestion).where(ChartQuestion.portal_id == g.portal.id)
    if _user_id() is not None:
        q = q.where(ChartQuestion.user_id == _user_id())
    rows = db_session().scalars(q.order_by(ChartQuestion.id.desc()).limit(20)).all()
    return jsonify(questions=[{"id": r.id, "question": r.question, "status": r.status, "job_id": r.job_id, "sql": r.sql,
                               "error": r.error, "message": r.message, "attempts": r.attempts, "cached": r.cached,
                               "row_count": r.row_count, "asked_at": r.created_at.isoformat() if r.created_at else None}
                              for r in rows])
