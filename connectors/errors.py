"""Typed errors raised by the Salesforce and CXone connectors.

Every message is written for a contact-center admin: what went wrong, where, and what to do.
No message ever carries a secret: server-provided text passes through `redact` first.

    try:
        await client.query("SELECT Id FROM Nope")
    except MalformedQuery as exc:
        print(exc)            # "Salesforce rejected the query ...: ..."
    except ConnectorError as exc:
        if exc.transient: ... # worth retrying later

Hierarchy (leaves are named after the condition, like httpx's):

    ConnectorError
    ├── AuthenticationError: InvalidCredentials, InvalidClient, UnsupportedGrant, SessionRejected
    ├── ApiError: NotFound, InvalidField, MalformedQuery, DuplicateValue, RequiredFieldMissing,
    │             ValidationRuleFailed, RequestLimitExceeded, NotPermitted, AgentLoggedOut, InvalidReason
    ├── TransientError: RateLimited, DeadlineExceeded, HostUnreachable
    └── MalformedResponse: BodyTooLarge
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

REDACTED = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would shred ordinary words without protecting anything


class ConnectorError(Exception):
    """Base of every connector error; `transient` says whether a later retry may succeed."""

    transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        system: str,
        endpoint: str | None = None,
        status_code: int | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.endpoint = endpoint
        self.status_code = status_code
        self.error_code = error_code

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class AuthenticationError(ConnectorError):
    """The token endpoint refused us; retrying with the same settings will not help."""


class InvalidCredentials(AuthenticationError):
    """Username/password/security token, JWT key or CXone access key rejected."""


class InvalidClient(AuthenticationError):
    """The OAuth client (connected app / CXone app) id or secret rejected."""


class UnsupportedGrant(AuthenticationError):
    """The OAuth flow is not enabled for this app, or not allowed on this host."""


class SessionRejected(AuthenticationError):
    """A freshly issued token was refused by the data API."""


class ApiError(ConnectorError):
    """The API understood the request and refused it (4xx); `details` holds its error entries."""

    def __init__(
        self,
        message: str,
        *,
        system: str,
        endpoint: str | None = None,
        status_code: int | None = None,
        error_code: str | None = None,
        details: tuple[dict[str, object], ...] = (),
    ) -> None:
        super().__init__(
            message, system=system, endpoint=endpoint, status_code=status_code, error_code=error_code
        )
        self.details = details


class NotFound(ApiError):
    """The record, session or resource does not exist (404)."""


class InvalidField(ApiError):
    """A field name the object does not have (Salesforce INVALID_FIELD)."""


class MalformedQuery(ApiError):
    """SOQL that Salesforce cannot parse (MALFORMED_QUERY)."""


class DuplicateValue(ApiError):
    """A unique field already holds this value (DUPLICATE_VALUE)."""


class RequiredFieldMissing(ApiError):
    """A required field was not given (REQUIRED_FIELD_MISSING)."""


class ValidationRuleFailed(ApiError):
    """An org validation rule refused the record (FIELD_CUSTOM_VALIDATION_EXCEPTION)."""


class RequestLimitExceeded(ApiError):
    """The org's 24-hour API budget is spent (403 REQUEST_LIMIT_EXCEEDED). Not retried: it is a budget."""


class NotPermitted(ApiError):
    """The authenticated user may not do this (403)."""


class AgentLoggedOut(ApiError):
    """The CXone agent has no running session to join (409)."""


class InvalidReason(ApiError):
    """The unavailable code is not one the agent's CXone team may use (400)."""


class TransientError(ConnectorError):
    """Timeouts, connection failures, 5xx, 429 that outlasted the retry policy (or were unsafe to repeat)."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        system: str,
        endpoint: str | None = None,
        status_code: int | None = None,
        error_code: str | None = None,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, system=system, endpoint=endpoint, status_code=status_code, error_code=error_code
        )
        # True when a non-idempotent request may have been applied before the failure.
        self.outcome_unknown = outcome_unknown
        # Seconds the server asked us to wait (Retry-After), when it said.
        self.retry_after = retry_after


class RateLimited(TransientError):
    """429/503 that outlasted the retry policy, or whose Retry-After is longer than it will wait."""


class DeadlineExceeded(TransientError):
    """No complete answer (connect, headers and whole body) within the request's overall deadline."""


class HostUnreachable(TransientError):
    """A host that never answered this client failed to connect, and one quick probe found it unreachable."""


class MalformedResponse(ConnectorError):
    """The server answered with something that is not the documented shape (non-JSON, missing keys)."""


class BodyTooLarge(MalformedResponse):
    """The answer's body is larger than the connector's size cap; it was not read."""


def is_transient(error: BaseException) -> bool:
    """True when retrying later may succeed; fit for Prefect's `retry_condition_fn`.

        @task(retries=3, retry_condition_fn=lambda t, r, s: is_transient(s.result(raise_on_failure=False)))
    """
    return isinstance(error, ConnectorError) and error.transient


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of a secret value in server-provided `text` with ***."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    return text
