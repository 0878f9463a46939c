"""The V2 error body: ``{request_id, errors: [{error_source, error_type, error_code, message}]}``.

That is the spec's ``error_response_body`` (OpenAPI 3.1 "ShipStation API v2" 2.0.0); its enums:
error_source carrier | order_source | ShipStation; error_type account_status | business_rules |
validation | security | system | integrations; error_code from a fixed list (invalid_field_value,
invalid_identifier, unauthorized, rate_limit_exceeded, field_value_required, ...).
"""

import uuid

from starlette.responses import JSONResponse


class V2Error(Exception):
    """A refusal answered with the V2 error body."""

    def __init__(self, status: int, error_type: str, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.error_code = error_code
        self.message = message

    def response(self) -> JSONResponse:
        return error_response(self.status, self.error_type, self.error_code, self.message)


def invalid_value(message: str) -> V2Error:
    return V2Error(400, "validation", "invalid_field_value", message)


def required(message: str) -> V2Error:
    return V2Error(400, "validation", "field_value_required", message)


def not_found(message: str) -> V2Error:
    return V2Error(404, "validation", "invalid_identifier", message)


def error_response(status: int, error_type: str, error_code: str, message: str) -> JSONResponse:
    body = {
        "request_id": str(uuid.uuid4()),
        "errors": [
            {
                "error_source": "ShipStation",
                "error_type": error_type,
                "error_code": error_code,
                "message": message,
            }
        ],
    }
    return JSONResponse(body, status_code=status)
