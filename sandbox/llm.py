"""An OpenAI-compatible chat completions endpoint whose answers a test scripts.

`POST /v1/chat/completions` and `GET /v1/models` answer the way the OpenAI API does (the `openai` SDK
pointed at `http://host:port/v1` works unchanged). Each completion pops the next scripted response from a
queue (`llm_script`): right SQL, wrong SQL then right SQL, a DROP, a read of another portal, `pg_sleep`,
whatever the test needs. With `repeat`, the last response answers every later request (benchmarks).
An empty queue answers 503 so a missing script is loud. Requests are recorded (`llm_requests`) so a test
can check what Hub24 sent: the dictionary, the question, the error fed back for a correction.

Admin ops (`POST /sandbox/<op>`): `llm_script(responses=[...], repeat=false)`, `llm_requests()`, `llm_reset()`.
A response is `{"answer": {...}}` (sent as JSON text), `{"content": "..."}` (sent as is) or
`{"error": {"status": 429, "message": "..."}}`.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, request

from .admin import op
from .core import Sandbox
from .errors import RestError

bp = Blueprint("llm", __name__, url_prefix="/v1")
MODELS = ("gpt-4o-mini", "gpt-4o", "sandbox-llm")


class Script:
    """The scripted answers and the recorded requests of one sandbox."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.responses: list[dict] = []
        self.repeat = False
        self.requests: list[dict] = []

    def next(self) -> dict | None:
        with self.lock:
            if not self.responses:
                return None
            if self.repeat and len(self.responses) == 1:
                return self.responses[0]
            return self.responses.pop(0)


def script_of(sandbox: Sandbox) -> Script:
    with sandbox.lock:
        s = getattr(sandbox, "llm_script", None)
        if s is None:
            s = sandbox.llm_script = Script()  # type: ignore[attr-defined]
        return s


def _check_response(r: Any, n: int) -> dict:
    if not isinstance(r, dict) or not ({"answer", "content", "error"} & set(r)):
        raise RestError(400, "ERROR_ARGUMENT", f"response {n + 1} must be an object with answer, content or error")
    if "error" in r and not isinstance(r["error"], dict):
        raise RestError(400, "ERROR_ARGUMENT", f"response {n + 1}: error must be an object with status and message")
    return r


@op
def llm_script(sandbox: Sandbox, responses: list | None = None, repeat: bool = False, append: bool = False) -> dict:
    """Queue scripted chat completion answers (replacing the queue unless `append`)."""
    if not isinstance(responses, list):
        raise RestError(400, "ERROR_ARGUMENT", "responses must be a list")
    checked = [_check_response(r, n) for n, r in enumerate(responses)]
    s = script_of(sandbox)
    with s.lock:
        s.responses = (s.responses if append else []) + checked
        s.repeat = bool(repeat) if not isinstance(repeat, str) else repeat.lower() in ("1", "true", "y", "yes")
    return {"queued": len(s.responses), "repeat": s.repeat}


@op
def llm_requests(sandbox: Sandbox) -> list:
    """Chat completion requests received so far (model, messages, response_format)."""
    s = script_of(sandbox)
    with s.lock:
        return list(s.requests)


@op
def llm_reset(sandbox: Sandbox) -> dict:
    """Forget the script and the recorded requests."""
    s = script_of(sandbox)
    with s.lock:
        s.responses, s.repeat, s.requests = [], False, []
    return {"ok": True}


def _error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None) -> Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _authorized() -> bool:
    header = request.headers.get("Authorization", "")
    return header.lower().startswith("bearer ") and bool(header[7:].strip())


@bp.get("/models")
def models() -> Response:
    """The model list, as `GET /v1/models` answers it."""
    if not _authorized():
        return _error(401, "You didn't provide an API key.", code="invalid_api_key")
    data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "sandbox"} for m in MODELS]
    return Response(json.dumps({"object": "list", "data": data}), mimetype="application/json")


@bp.post("/chat/completions")
def chat_completions() -> Response:
    """One chat completion: the next scripted answer, shaped as the OpenAI API shapes it."""
    if not _authorized():
        return _error(401, "You didn't provide an API key.", code="invalid_api_key")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
        return _error(400, "model and messages are required.")
    sandbox: Sandbox = current_app.config["SANDBOX"]
    s = script_of(sandbox)
    with s.lock:
        s.requests.append({"model": body.get("model"), "messages": body["messages"],
                           "response_format": body.get("response_format")})
    scripted = s.next()
    if scripted is None:
        return _error(503, "The sandbox LLM has no scripted answer left (POST /sandbox/llm_script).", "server_error")
    if "error" in scripted:
        err = scripted["error"]
        return _error(int(err.get("status", 500)), str(err.get("message", "scripted error")), "server_error")
    content = scripted["content"] if "content" in scripted else json.dumps(scripted["answer"], ensure_ascii=False)
    prompt_tokens = sum(len(str(m.get("content", ""))) for m in body["messages"] if isinstance(m, dict)) // 4
    out = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
           "model": body["model"], "system_fingerprint": "sandbox",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(content) // 4,
                     "total_tokens": prompt_tokens + len(content) // 4}}
    return Response(json.dumps(out, ensure_ascii=False), mimetype="application/json")
