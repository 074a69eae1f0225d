"""Errors the sandbox answers with, shaped as Bitrix24 shapes them (PROTOCOL.md §2.4, §3.4)."""
from __future__ import annotations


class RestError(Exception):
    """A REST error: HTTP status, `error` code (may be "" for legacy CRM methods) and description.

    `extra` holds additional top-level keys some methods add (``placement.bind`` adds ``argument``).
    """

    def __init__(self, status: int, code: str, description: str = "", **extra):
        super().__init__(f"{status} {code}: {description}")
        self.status = status
        self.code = code
        self.description = description
        self.extra = extra

    def body(self) -> dict:
        out = {"error": self.code, "error_description": self.description}
        out.update(self.extra)
        return out


def legacy(description: str, status: int = 400) -> RestError:
    """Legacy crm.deal/lead/contact/company errors: status 400 with an empty `error` code."""
    return RestError(status, "", description)


def method_not_found(name: str) -> RestError:
    return RestError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")


def no_auth() -> RestError:
    return RestError(401, "NO_AUTH_FOUND", "Wrong authorization data")


def expired_token() -> RestError:
    return RestError(401, "expired_token", "The access token provided has expired.")


def invalid_token() -> RestError:
    return RestError(401, "invalid_token", "The access token provided is invalid.")


def insufficient_scope() -> RestError:
    return RestError(403, "insufficient_scope", "The request requires higher privileges than provided by the access token")


def access_denied(description: str = "Access denied.") -> RestError:
    return RestError(403, "ACCESS_DENIED", description)


def query_limit() -> RestError:
    return RestError(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")


def operation_time_limit(method: str) -> RestError:
    return RestError(429, "OPERATION_TIME_LIMIT", f"Method is blocked due to operation time limit.")
