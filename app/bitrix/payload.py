"""Reading what a portal POSTs: PHP bracket-keyed forms (`auth[member_id]`, `data[FIELDS][ID]`) into dicts.

Bitrix24 sends every callback as `application/x-www-form-urlencoded` with PHP-style keys; some callers
(and the docs' Python snippets) send JSON instead, so both are accepted. Anything odd — too many fields,
too deep, conflicting keys (`a=1` and `a[b]=2`), oversized values — raises `BadPayload`, which views
turn into a 400: a callback shape we do not understand is refused, never half-read.
"""
from __future__ import annotations

import json
import re
from typing import Any

from flask import Request

MAX_FIELDS = 2000
MAX_DEPTH = 8
MAX_KEY = 200
MAX_VALUE = 64 * 1024
_PART = re.compile(r"\[([^\[\]]*)\]")


class BadPayload(ValueError):
    """The request body is not a callback shape Hub24 can read; the message says what is wrong."""


def _split(key: str) -> list[str]:
    if len(key) > MAX_KEY:
        raise BadPayload("a field name is too long")
    head, bracket, rest = key.partition("[")
    if not head:
        raise BadPayload(f"malformed field name {key[:40]!r}")
    parts = [head]
    if bracket:
        rest = "[" + rest
        pos = 0
        for m in _PART.finditer(rest):
            if m.start() != pos:
                raise BadPayload(f"malformed field name {key[:40]!r}")
            parts.append(m.group(1))
            pos = m.end()
        if pos != len(rest):
            raise BadPayload(f"malformed field name {key[:40]!r}")
    if len(parts) > MAX_DEPTH:
        raise BadPayload("a field is nested too deeply")
    return parts


def nest_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """PHP bracket keys to nested dicts (`a[]` appends as "0", "1"...). Raises BadPayload on conflicts."""
    if len(pairs) > MAX_FIELDS:
        raise BadPayload(f"too many fields (more than {MAX_FIELDS})")
    out: dict[str, Any] = {}
    for key, value in pairs:
        if len(value) > MAX_VALUE:
            raise BadPayload(f"field {key[:40]!r} is too large")
        parts = _split(key)
        node: dict[str, Any] = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                part = str(len(node))
            if last:
                if isinstance(node.get(part), dict):
                    raise BadPayload(f"field {key[:40]!r} is given both as a value and as a group")
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise BadPayload(f"field {key[:40]!r} is given both as a value and as a group")
                node = child
    return out


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise BadPayload("the JSON body is nested too deeply")
    if isinstance(value, dict):
        if len(value) > MAX_FIELDS:
            raise BadPayload("too many fields")
        for v in value.values():
            _check_json(v, depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_FIELDS:
            raise BadPayload("too many fields")
        for v in value:
            _check_json(v, depth + 1)
    elif isinstance(value, str) and len(value) > MAX_VALUE:
        raise BadPayload("a field is too large")


def _stringify(value: Any) -> Any:
    """JSON scalars as a form would deliver them (strings), so one code path reads both encodings."""
    if isinstance(value, dict):
        return {str(k): _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): _stringify(v) for i, v in enumerate(value)}
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    return str(value)


def read_body(request: Request) -> dict[str, Any]:
    """The callback body as a nested dict of strings (form or JSON). Raises BadPayload."""
    if request.is_json:
        try:
            body = json.loads(request.get_data(cache=True) or b"null")
        except (ValueError, UnicodeDecodeError):
            raise BadPayload("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadPayload("the JSON body must be an object")
        _check_json(body)
        return _stringify(body)
    try:
        pairs = list(request.form.items(multi=True))
    except UnicodeDecodeError:
        raise BadPayload("the form is not valid UTF-8") from None
    return nest_pairs(pairs)


def read_query(request: Request) -> dict[str, str]:
    """Query-string parameters (a frame POST carries DOMAIN, PROTOCOL, LANG, APP_SID there)."""
    if len(request.args) > 50:
        raise BadPayload("too many query parameters")
    out = {}
    for k, v in request.args.items():
        if len(k) > MAX_KEY or len(v) > 2048:
            raise BadPayload("a query parameter is too long")
        out[k] = v
    return out


def text(payload: dict[str, Any], *path: str, max_len: int = 512, required: bool = False) -> str:
    """A string at `path` ("" when absent). Raises BadPayload when it is a group, too long, or required and empty."""
    node: Any = payload
    for p in path:
        node = node.get(p) if isinstance(node, dict) else None
    if node is None:
        node = ""
    if not isinstance(node, str):
        raise BadPayload(f"{'.'.join(path)} must be a single value")
    if len(node) > max_len:
        raise BadPayload(f"{'.'.join(path)} is too long")
    if required and not node:
        raise BadPayload(f"{'.'.join(path)} is required")
    return node


def group(payload: dict[str, Any], *path: str) -> dict[str, Any]:
    """A nested group at `path` ({} when absent). Raises BadPayload when it is a single value."""
    node: Any = payload
    for p in path:
        node = node.get(p) if isinstance(node, dict) else None
    if node is None or node == "":
        return {}
    if not isinstance(node, dict):
        raise BadPayload(f"{'.'.join(path)} must be a group of fields")
    return node
