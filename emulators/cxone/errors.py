"""CXone's error answers, in one place: the typed exceptions the tenant raises and their JSON shape.

Every error the emulator gives, its own or an injected fault, is an object
`{"error": "<code>", "error_description": "<what is wrong and how to fix it>"}`: the OAuth shape
the token endpoint uses (`{"error": "invalid_client"}`, apis.md C1), reused for the data API.

    raise Conflict("agent 1000001 is logged out: log in before joining its session")
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


def error_body(status: int, message: str) -> dict[str, str]:
    """The body of an error with `status`: what `FaultMiddleware` uses for injected faults."""
    return {"error": _status_code_name(status), "error_description": message}


def _status_code_name(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


class CxoneError(Exception):
    """An error CXone answers with; `status` and `error` are its HTTP status and error code."""

    status: int = 400
    error: str = "invalid_request"

    def __init__(self, description: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


class BadRequest(CxoneError):
    status, error = 400, "invalid_request"


class Unauthorized(CxoneError):
    """401 on the API: no, unknown or expired bearer token (get a new one and retry once)."""

    status, error = 401, "invalid_token"

    def __init__(self, description: str) -> None:
        super().__init__(description, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Forbidden(CxoneError):
    status, error = 403, "forbidden"


class NotFound(CxoneError):
    status, error = 404, "not_found"


class Conflict(CxoneError):
    status, error = 409, "conflict"


class InvalidClient(CxoneError):
    """401 from the token endpoint: client id/secret wrong, or the application not approved."""

    status, error = 401, "invalid_client"

    def __init__(self, description: str) -> None:
        super().__init__(description, headers={"WWW-Authenticate": 'Basic realm="cxone"'})


class InvalidGrant(CxoneError):
    """400 from the token endpoint: access key wrong or revoked, its user inactive, or a bad refresh token."""

    status, error = 400, "invalid_grant"


class UnsupportedGrantType(CxoneError):
    status, error = 400, "unsupported_grant_type"
