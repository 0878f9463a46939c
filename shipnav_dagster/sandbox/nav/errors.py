"""OData answers of the NAV emulator: the error body, JSON encoding, and a transport-free reply.

NAV and Business Central answer every failure with
``{"error":{"code":"<Category_Detail>","message":"<text>  CorrelationId:  <guid>."}}``; the codes
and message texts are those of Microsoft's table of OData/API error codes
(https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/dynamics-error-codes).
The same body appears inside a JSON ``$batch`` response, so handlers return a :class:`Reply`
that the HTTP endpoint and the batch processor both turn into what they send.
"""

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from starlette.responses import Response

JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"
ERROR_TYPE = "application/json; charset=utf-8"
ODATA_VERSION = {"OData-Version": "4.0"}


@dataclass
class Reply:
    """One OData answer before it is put on the wire (or into a $batch response)."""

    status: int
    body: Any = None  # a JSON value, or str/bytes sent as they are
    media_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, default=json_default, ensure_ascii=False).encode("utf-8")

    def response(self) -> Response:
        return Response(
            self.content(),
            status_code=self.status,
            media_type=self.media_type,
            headers={**ODATA_VERSION, **self.headers},
        )


class ODataFailure(Exception):
    """An OData error answer: ``{"error":{"code":...,"message":"...  CorrelationId:  <guid>."}}``."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def reply(self) -> Reply:
        return error_reply(self.status, self.code, self.message, self.headers)

    def response(self) -> Response:
        return self.reply().response()


def error_body(code: str, message: str) -> dict[str, Any]:
    text = message.rstrip(".")
    return {"error": {"code": code, "message": f"{text}.  CorrelationId:  {uuid.uuid4()}."}}


def error_reply(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, error_body(code, message), ERROR_TYPE, dict(headers or {}))


def odata_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return error_reply(status, code, message, headers).response()


def bad_syntax(detail: str = "") -> ODataFailure:
    return ODataFailure(400, "BadRequest_NotFound", "Bad Request - Error in query syntax" + detail)


def resource_not_found(segment: str) -> ODataFailure:
    """An unknown (or unpublished) entity set or path segment: ODataResourceNotFoundException."""
    return ODataFailure(404, "BadRequest_ResourceNotFound", f"Resource not found for the segment '{segment}'")


def method_not_allowed(method: str) -> ODataFailure:
    return ODataFailure(
        405, "BadRequest_MethodNotAllowed", f"The request method '{method}' is not allowed for this resource"
    )


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def native(number: Decimal) -> int | float:
    """Store numbers as plain JSON numbers, like the seed does, so arithmetic on records works."""
    return int(number) if number == number.to_integral_value() else float(number)


def json_reply(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, body, JSON_TYPE, dict(headers or {}))
