"""The exceptions of `app.charts`, in one tree so callers catch at the level they need.

    ChartError                 anything a user can be told about (has `code` and a plain `message`)
    ├── Refused                the guard refused the SQL (not one SELECT over the portal's tables, ...)
    ├── QueryFailed            PostgreSQL refused or failed the query (syntax, permission, timeout)
    │   └── QueryTimeout       the statement timeout cut it off
    ├── BadSpec                a chart or builder spec that does not fit the portal's mirror
    └── AiDisabled             no OPENAI_API_KEY: AI charts are off
"""
from __future__ import annotations


class ChartError(Exception):
    """Base: a problem with a chart that can be shown to the user as `message`."""

    code = "chart_error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code

    def as_dict(self) -> dict:
        return {"error": self.code, "message": self.message}


class Refused(ChartError):
    """The SQL guard refused a query; `message` says why in one sentence."""

    code = "sql_refused"


class QueryFailed(ChartError):
    """The database refused or failed the query; `message` is PostgreSQL's own first line."""

    code = "sql_error"


class QueryTimeout(QueryFailed):
    """The query ran longer than the statement timeout."""

    code = "sql_timeout"


class BadSpec(ChartError):
    """A chart or builder spec names an unknown field, aggregation, chart type or value."""

    code = "bad_spec"


class AiDisabled(ChartError):
    """AI charts are off because OPENAI_API_KEY is not set."""

    code = "ai_disabled"
