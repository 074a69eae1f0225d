"""/api/v1/sync/... and /api/v1/webhooks/...: control and watch the CRM mirror (thin views)."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from ..bitrix.errors import BitrixError, NotAvailableForWebhook
from ..sync import service
from .auth import admin_required, api_auth_required

bp = Blueprint("sync_api", __name__, url_prefix="/api/v1")


def _error(status: int, code: str, message: str):
    return jsonify(error=code, message=message), status


def _json_body() -> dict | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


@bp.post("/sync/start/<entity>")
@api_auth_required
@admin_required
def start(entity: str):
    body = _json_body() if request.data else {}
    if body is None:
        return _error(400, "bad_request", 'Send a JSON object like {"sync_type": "full"}.')
    sync_type = body.get("sync_type", "incremental")
    if sync_type not in ("full", "incremental", "reconcile"):
        return _error(400, "bad_request", "sync_type must be full, incremental or reconcile.")
    known = {n for n in service.get_config(g.portal.id)}
    if entity != "all" and entity not in known:
        return _error(404, "unknown_entity", f"Unknown entity {entity!r}; known: {', '.join(sorted(known))} or all.")
    reason = service.pause_reason(g.portal)
    if reason:
        return _error(409, "sync_paused", f"Sync is paused: {reason}.")
    jobs = [service.enqueue_sync(g.portal.id, name, sync_type) for name in (sorted(known) if entity == "all" else [entity])]
    return jsonify(queued=[{"entity": j.args[1], "job_id": j.id, "status": j.get_status()} for j in jobs]), 202


@bp.get("/sync/status")
@api_auth_required
def status():
    from ..jobs import SYNC, get_queue

    out = service.status(g.portal.id)
    queue = get_queue(SYNC)
    jobs = []
    for job_id in queue.started_job_registry.get_job_ids() + queue.job_ids:
        job = queue.fetch_job(job_id)
        if job is not None and job.args and job.args[0] == g.portal.id:
            jobs.append({"job_id": job.id, "entity": job.args[1] if len(job.args) > 1 else None,
                         "status": job.get_status(), "meta": job.meta})
    out["jobs"] = jobs
    return jsonify(out)


@bp.get("/sync/config")
@api_auth_required
def get_config():
    return jsonify(service.get_config(g.portal.id))


@bp.put("/sync/config")
@api_auth_required
@admin_required
def put_config():
    body = _json_body()
    if body is None:
        return _error(400, "bad_request", 'Send a JSON object like {"deal": {"interval_s": 600, "realtime": true}}.')
    try:
        return jsonify(service.put_config(g.portal.id, body))
    except service.SyncRefused as exc:
        return _error(400, "bad_request", str(exc))


def _portal_call(fn):
    """Run a call that talks to the portal; map what can go wrong onto clear 4xx/5xx answers."""
    try:
        return jsonify(fn(g.portal.id))
    except NotAvailableForWebhook as exc:
        return _error(409, "not_available_for_webhook", exc.description or str(exc))
    except BitrixError as exc:
        return _error(502, "bitrix_error", f"Bitrix24 answered {exc.code or 'an error'}: {exc.description}")


@bp.post("/webhooks/register")
@api_auth_required
@admin_required
def register_webhooks():
    from ..sync.realtime import register

    return _portal_call(register)


@bp.delete("/webhooks/register")
@bp.route("/webhooks/unregister", methods=["POST", "DELETE"])
@api_auth_required
@admin_required
def unregister_webhooks():
    from ..sync.realtime import unregister

    return _portal_call(unregister)


@bp.get("/webhooks/registered")
@api_auth_required
def registered_webhooks():
    from ..sync.realtime import registered

    return _portal_call(registered)
