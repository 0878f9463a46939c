"""Reading a V2 request: query parameters (the way ASP.NET Core model binding reads them), path ids.

Names match case-insensitively; a repeated name binds its first value; an empty value means "not
given"; a parameter the endpoint does not declare is ignored, never refused. A declared
parameter whose value does not fit its type (an integer, an enum, a date-time, an ``se-`` id) is
refused with 400 and the V2 error body (the spec lists 400 ``error_response_body`` on every list
operation).
"""

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from shipnav_dagster.sandbox.shipstation.v2.errors import V2Error, invalid_value
from shipnav_dagster.sandbox.shipstation.v2.ids import is_se_id
from shipnav_dagster.sandbox.state import SandboxWorld

DEFAULT_PAGE_SIZE = 25  # the spec's page_size default


class Query:
    def __init__(self, request: Request) -> None:
        self.values: dict[str, str] = {}
        for key, value in request.query_params.multi_items():
            name = key.lower()
            if name not in self.values and value.strip() != "":
                self.values[name] = value.strip()

    def text(self, name: str) -> str | None:
        return self.values.get(name)

    def se_id(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is not None and not is_se_id(value):
            raise invalid_value(f"{name} must be an id like se-123456; got '{value}'.")
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str | None:
        """One of ``allowed``, matched case-insensitively (enums bind that way)."""
        value = self.values.get(name)
        if value is None:
            return None
        for option in allowed:
            if option.lower() == value.lower():
                return option
        raise invalid_value(f"{name} must be one of {', '.join(allowed)}; got '{value}'.")

    def instant(self, name: str) -> datetime | None:
        value = self.values.get(name)
        return None if value is None else parse_instant(value, name)

    def integer(self, name: str, default: int, minimum: int) -> int:
        value = self.values.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise invalid_value(f"{name} must be an integer; got '{value}'.") from None
        if number < minimum:
            raise invalid_value(f"{name} must be {minimum} or greater; got {number}.")
        return number

    def paging(self, max_page_size: int | None) -> tuple[int, int]:
        """``page`` (from 1) and ``page_size`` (default 25; capped only if a maximum is set)."""
        page = self.integer("page", 1, 1)
        size = self.integer("page_size", DEFAULT_PAGE_SIZE, 1)
        if max_page_size is not None:
            size = min(size, max_page_size)
        return page, size


def parse_instant(value: str, name: str = "value") -> datetime:
    """An ISO-8601 date-time (or bare date) as an aware UTC datetime; 400 if it is not one.

    The spec's date-time parameters look like ``2019-03-12T19:24:13.657Z``; a value without an
    offset (or a bare date, as some taps send) is taken as UTC.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_value(
            f"{name} must be an ISO-8601 date-time such as 2019-03-12T19:24:13.657Z; got '{value}'."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def world_of(request: Request) -> SandboxWorld:
    return request.app.state.world


def base_url(request: Request) -> str:
    """The server's base URL without a trailing slash (V2 paths begin ``/v2/``)."""
    return str(request.base_url).rstrip("/")


def descending(query: Query) -> bool:
    """``sort_dir`` defaults to desc (the spec's sort_dir parameter default)."""
    return (query.choice("sort_dir", ("asc", "desc")) or "desc") == "desc"


def path_se_id(request: Request, name: str) -> str:
    """A path parameter typed ``se_id`` in the spec; 400 if it is not one."""
    value = request.path_params[name]
    if not is_se_id(value):
        raise invalid_value(f"{name} must be an id like se-123456; got '{value}'.")
    return value


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise V2Error(400, "validation", "request_body_required", "The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise invalid_value("The request body must be a JSON object.")
    return body
