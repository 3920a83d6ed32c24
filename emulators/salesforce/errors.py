"""Errors in Salesforce's own shapes.

The data API answers a JSON array `[{"message", "errorCode", "fields"?}]`; per-record results of a
collection carry `{"statusCode", "message", "fields"}`; the token endpoint answers
`{"error", "error_description"}`. The control API (`/__emulator/`) answers `{"detail": ...}`.
"""

from __future__ import annotations

from typing import Any

SESSION_INVALID = "Session expired or invalid"
RESOURCE_NOT_FOUND = "The requested resource does not exist"


class SalesforceApiError(Exception):
    """A data API error: HTTP status, Salesforce error code, message, and the fields at fault (DML only)."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            entry["fields"] = self.fields
        return [entry]

    def record_error(self) -> dict[str, Any]:
        """The error as one entry of a per-record result (`/composite/sobjects`)."""
        return {"statusCode": self.error_code, "message": self.message, "fields": self.fields or []}


class OAuthError(Exception):
    """A token endpoint error (always HTTP 400 at Salesforce)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class ControlError(Exception):
    """A bad request to the emulator's own controls or its in-process API."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownUserError(ControlError):
    status = 404


class UnknownProfileError(ControlError):
    status = 404


class UnknownStatusError(ControlError):
    status = 404


class NoStatusAccessError(ControlError):
    status = 409


class DuplicateNameError(ControlError):
    status = 409


def session_invalid() -> SalesforceApiError:
    return SalesforceApiError(401, "INVALID_SESSION_ID", SESSION_INVALID)


def not_found(message: str = RESOURCE_NOT_FOUND) -> SalesforceApiError:
    return SalesforceApiError(404, "NOT_FOUND", message)


_CODE_BY_STATUS = {
    401: "INVALID_SESSION_ID",
    403: "REQUEST_LIMIT_EXCEEDED",
    404: "NOT_FOUND",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "UNKNOWN_EXCEPTION",
    503: "SERVER_UNAVAILABLE",
}


def error_body(status: int, message: str) -> list[dict[str, str]]:
    """The body of an injected fault, shaped like Salesforce's own errors (for `FaultMiddleware`)."""
    code = _CODE_BY_STATUS.get(status, "UNKNOWN_EXCEPTION" if status >= 500 else "BAD_REQUEST")
    return [{"message": message, "errorCode": code}]
