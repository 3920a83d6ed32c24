"""Async client for Salesforce's REST data API (apis.md S2-S4): queries, records, presence commands.

    creds = SalesforceCredentials(
        login_url="https://acme.my.salesforce.com",
        auth=ClientCredentialsFlow(client_id="3MVG9...", client_secret=SecretStr("...")),
    )
    async with creds.get_client() as sf:
        users = await sf.query("SELECT Id, Username FROM User WHERE IsActive = true")
        results = await sf.publish_presence_commands([PresenceCommand(user_id, status_id, command_id)])
        print(sf.api_usage)   # ApiUsage(used=1520, limit=15000)

How to log in is the credentials' (connectors/salesforce_auth.py, which imports this module to build
clients); the client only needs the `SalesforceLogin` they provide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from presence_sync.connectors.auth import BearerAuth, TokenGate
from presence_sync.connectors.errors import (
    ApiError,
    ConnectorError,
    DuplicateValue,
    InvalidField,
    MalformedQuery,
    NotFound,
    NotPermitted,
    RequestLimitExceeded,
    RequiredFieldMissing,
    SessionRejected,
    ValidationRuleFailed,
    redact,
)
from presence_sync.connectors.http import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TIMEOUT,
    HttpSession,
    Pace,
    decode_json,
    endpoint_of,
    malformed_response,
    parse_json,
)
from presence_sync.connectors.retry import RetryPolicy

logger = logging.getLogger(__name__)

SYSTEM = "Salesforce"

COMPOSITE_LIMIT = 200  # records per /composite/sobjects call; more is EXCEEDED_ID_LIMIT

# Objects Salesforce will not save in one call together with other types ("mixed DML").
SETUP_OBJECTS = frozenset(
    {
        "ServicePresenceStatus",
        "ServiceChannelStatus",
        "SetupEntityAccess",
        "User",
        "UserRole",
        "Group",
        "GroupMember",
        "PermissionSet",
        "PermissionSetAssignment",
    }
)

# The platform event the presence applier listens to [our design, apis.md S4].
PRESENCE_COMMAND_EVENT = "Presence_Sync_Command__e"
OFFLINE_STATUS_ID = "0"

_SOBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_API_USAGE = re.compile(r"(?:^|[\s,;])api-usage=(?P<used>\d+)/(?P<limit>\d+)")


@dataclass(frozen=True, slots=True)
class SalesforceIdentity:
    """Who we are logged in as, from the token response."""

    instance_url: str
    org_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class SalesforceToken:
    """What a successful login gives: the bearer token, who we are, and a refresh token if issued."""

    access_token: SecretStr
    identity: SalesforceIdentity
    refresh_token: SecretStr | None


class SalesforceLogin(Protocol):
    """What a client needs from its credentials: `SalesforceCredentials` provides it."""

    @property
    def api_version(self) -> str: ...

    async def fetch_token(self, session: HttpSession, previous: SalesforceToken | None) -> SalesforceToken:
        """A new token (through `previous`'s refresh token when it has one); AuthenticationError with the fix."""
        ...

    def secret_values(self) -> list[str]:
        """Every secret the credentials hold, as sent on the wire (for scrubbing server text)."""
        ...


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """The org's 24-hour API budget as last reported in `Sforce-Limit-Info`."""

    used: int
    limit: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def fraction_used(self) -> float:
        return self.used / self.limit if self.limit else 1.0


def parse_limit_info(header: str | None) -> ApiUsage | None:
    """`api-usage=18/5000` (possibly among other entries) -> ApiUsage(18, 5000); None if absent."""
    match = _API_USAGE.search(header or "")
    return ApiUsage(int(match["used"]), int(match["limit"])) if match else None


class SaveError(BaseModel):
    """One entry of a save result's `errors` (a note such as OPERATION_ENQUEUED is not a failure)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    status_code: str = Field(alias="statusCode")
    message: str = ""
    fields: tuple[str, ...] = ()


class SaveResult(BaseModel):
    """The outcome of saving one record: `success` is the signal, `id` is None when it failed."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    success: bool
    errors: tuple[SaveError, ...] = ()


class _QueryPage(BaseModel):
    done: bool
    records: list[dict[str, Any]]
    nextRecordsUrl: str | None = None  # noqa: N815 - the API's own name


@dataclass(frozen=True, slots=True)
class PresenceCommand:
    """A request to the presence applier to set `user_id`'s Omni status (`status_id` "0" = offline)."""

    user_id: str
    status_id: str
    command_id: str
    reason: str | None = None

    def __post_init__(self) -> None:
        if not _RECORD_ID.fullmatch(self.user_id):
            raise ValueError(f"user_id must be a 15- or 18-character Salesforce User Id; got {self.user_id!r}")
        if self.status_id != OFFLINE_STATUS_ID and not re.fullmatch(r"[A-Za-z0-9]{18}", self.status_id):
            raise ValueError(
                "status_id must be the 18-character ServicePresenceStatus Id, or '0' for offline; "
                f"got {self.status_id!r}"
            )
        if not self.command_id:
            raise ValueError("command_id must be a non-empty unique id (it is how echoes are recognised)")

    def to_record(self) -> dict[str, Any]:
        """The platform-event record, field names as the applier's metadata defines them."""
        record: dict[str, Any] = {
            "attributes": {"type": PRESENCE_COMMAND_EVENT},
            "UserId__c": self.user_id,
            "StatusId__c": self.status_id,
            "CommandId__c": self.command_id,
        }
        if self.reason is not None:
            record["Reason__c"] = self.reason
        return record


# errorCode -> (exception, what the admin should do about it)
_DATA_ERRORS: dict[str, tuple[type[ApiError], str]] = {
    "MALFORMED_QUERY": (
        MalformedQuery,
        "the query is not valid SOQL for this org and API version; if presence-sync built it, report it",
    ),
    "INVALID_FIELD": (
        InvalidField,
        "the field does not exist or the integration user can't see it: check the API version and the "
        "field-level security of the user's profile",
    ),
    "DUPLICATE_VALUE": (DuplicateValue, "a record with this unique value already exists: look it up instead"),
    "REQUIRED_FIELD_MISSING": (RequiredFieldMissing, "give the required field(s) named above"),
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": (
        ValidationRuleFailed,
        "a validation rule in the org refused the record: change the values or the rule",
    ),
    "NOT_FOUND": (NotFound, "the record does not exist (deleted, or a wrong id)"),
    "INSUFFICIENT_ACCESS": (NotPermitted, "give the integration user's profile or permission set access"),
}


class SalesforceClient:
    """Async Salesforce client: one connection pool, at most `max_concurrency` requests in flight.

        async with SalesforceClient(creds, transport=httpx.ASGITransport(app)) as sf:
            await sf.authenticate()

    With `transport`, every host (login and instance) is served by it. Tokens are fetched lazily
    and single-flight; a 401 INVALID_SESSION_ID triggers one re-authentication and one retry
    (`BearerAuth`, inside each attempt of the session's retry loop).
    """

    def __init__(
        self,
        credentials: SalesforceLogin,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_concurrency: int = 16,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.credentials = credentials
        self._http = HttpSession(
            SYSTEM,
            transport=transport,
            max_concurrency=max_concurrency,
            retry=retry or RetryPolicy(),
            timeout=timeout,
            deadline_seconds=deadline_seconds,
            max_body_bytes=max_body_bytes,
            headers={"Accept": "application/json"},
            redact=self._redact,
        )
        self._tokens: TokenGate[SalesforceToken] = TokenGate(partial(credentials.fetch_token, self._http))
        self._api_usage: ApiUsage | None = None

    async def __aenter__(self) -> SalesforceClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def pace_requests(self, pace: Pace | None) -> None:
        """Await `pace` before every API request from now on (None: no pacing beyond the retry policy)."""
        self._http.pace = pace

    # ----------------------------------------------------------------- identity and budget

    @property
    def api_usage(self) -> ApiUsage | None:
        """The last `Sforce-Limit-Info` reading, or None before the first data API call."""
        return self._api_usage

    @property
    def identity(self) -> SalesforceIdentity:
        token = self._tokens.token
        if token is None:
            raise RuntimeError("not authenticated yet: call `await client.authenticate()` first")
        return token.identity

    @property
    def instance_url(self) -> str:
        return self.identity.instance_url

    @property
    def org_id(self) -> str:
        return self.identity.org_id

    @property
    def user_id(self) -> str:
        return self.identity.user_id

    async def authenticate(self) -> SalesforceIdentity:
        """Obtain a new token now (raising AuthenticationError subclasses with the fix), and say who we are."""
        token, _ = await self._tokens.renew(self._tokens.generation)
        return token.identity

    # ----------------------------------------------------------------- data API

    async def query_pages(self, soql: str) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield the records of each result page, following `nextRecordsUrl`.

        The next page is asked for as soon as a page says where it is, so its round trip overlaps
        whatever the caller does with this page's records (a burst's poll reads ten pages).
        """
        call: asyncio.Future[httpx.Response] = asyncio.ensure_future(self._call("GET", "/query", params={"q": soql}))
        try:
            while True:
                response = await call
                endpoint = endpoint_of(response)
                page: _QueryPage = parse_json(
                    response, _QueryPage, system=SYSTEM, endpoint=endpoint, expected="a query result page"
                )
                if not page.done:
                    if not page.nextRecordsUrl:
                        raise malformed_response(
                            SYSTEM, endpoint, "done is false but nextRecordsUrl is missing", "a query result page"
                        )
                    call = asyncio.ensure_future(self._call("GET", page.nextRecordsUrl))
                yield page.records
                if page.done:
                    return
        finally:
            if not call.done():
                call.cancel()
                with contextlib.suppress(BaseException):  # a page no one reads: its outcome does not matter
                    await call
            elif not call.cancelled():
                call.exception()  # retrieved: a read-ahead that failed after its reader stopped is not logged as lost

    async def query(self, soql: str) -> list[dict[str, Any]]:
        """All records of a SOQL query, every page. Build literals with connectors.soql."""
        return [record async for page in self.query_pages(soql) for record in page]

    async def get(self, path: str) -> Any:
        """GET a data API path (`/sobjects/User/005...`) or an instance path (`/services/...`); its JSON."""
        response = await self._call("GET", path)
        if response.status_code == 204:
            return None
        return decode_json(response, system=SYSTEM, endpoint=endpoint_of(response))

    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        """Create one record; its new Id."""
        response = await self._call("POST", f"/sobjects/{_sobject(sobject)}/", json=dict(fields), idempotent=False)
        endpoint = endpoint_of(response)
        result: SaveResult = parse_json(
            response, SaveResult, system=SYSTEM, endpoint=endpoint, expected="a save result"
        )
        if not result.success or not result.id:
            raise self._save_failure(endpoint, result)
        return result.id

    async def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        """Update fields of one record (idempotent)."""
        await self._call("PATCH", f"/sobjects/{_sobject(sobject)}/{_record_id(record_id)}", json=dict(fields))

    async def delete(self, sobject: str, record_id: str) -> None:
        """Delete one record."""
        await self._call("DELETE", f"/sobjects/{_sobject(sobject)}/{_record_id(record_id)}")

    async def create_many(
        self, records: Iterable[Mapping[str, Any]], all_or_none: bool = False
    ) -> list[SaveResult]:
        """Create records (each with `attributes.type`) via /composite/sobjects, 200 per call, in input order.

        Calls run concurrently under the client's bound. If a call fails as a whole while others
        succeeded, its records come back as failed results (status code = the error's code) so that
        nothing saved is forgotten; if every call failed, the first error is raised.
        """
        batch = [dict(record) for record in records]
        if not batch:
            return []
        _check_one_kind(batch)
        if all_or_none and len(batch) > COMPOSITE_LIMIT:
            raise ValueError(
                f"all_or_none can only hold within one call of at most {COMPOSITE_LIMIT} records; got "
                f"{len(batch)}. Split the records yourself, or pass all_or_none=False"
            )
        chunks = [batch[start : start + COMPOSITE_LIMIT] for start in range(0, len(batch), COMPOSITE_LIMIT)]
        outcomes = await asyncio.gather(
            *(self._create_chunk(chunk, all_or_none) for chunk in chunks), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, ConnectorError):
                raise outcome
        failures = [outcome for outcome in outcomes if isinstance(outcome, ConnectorError)]
        if len(failures) == len(outcomes):
            raise failures[0]
        if failures:
            logger.warning(
                "Salesforce: %d of %d composite calls failed (%s); their records are reported as failed",
                len(failures), len(outcomes), failures[0].error_code or type(failures[0]).__name__,
            )
        results: list[SaveResult] = []
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, list):
                results.extend(outcome)
            else:
                results.extend(_failed_result(outcome) for _ in chunk)  # type: ignore[arg-type]
        return results

    async def publish_presence_commands(self, commands: Sequence[PresenceCommand]) -> list[SaveResult]:
        """Publish Presence_Sync_Command__e events; a result's `success` says it was accepted.

        Published events answer `success: true` with an OPERATION_ENQUEUED note in `errors`:
        queued for delivery, which is what success means here.
        """
        return await self.create_many(command.to_record() for command in commands)

    # ----------------------------------------------------------------- plumbing

    async def _create_chunk(self, chunk: list[dict[str, Any]], all_or_none: bool) -> list[SaveResult]:
        response = await self._call(
            "POST", "/composite/sobjects", json={"allOrNone": all_or_none, "records": chunk}, idempotent=False
        )
        endpoint = endpoint_of(response)
        results: list[SaveResult] = parse_json(
            response, list[SaveResult], system=SYSTEM, endpoint=endpoint, expected="a list of save results"
        )
        if len(results) != len(chunk):
            raise malformed_response(
                SYSTEM, endpoint, f"{len(results)} save results for {len(chunk)} records", "one result per record"
            )
        return results

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """An authorised data API request; a non-2xx answer is raised as a typed error."""
        auth = await BearerAuth.current(self._tokens)
        url = self._url(auth.token.identity.instance_url, path)
        response = await self._http.request(method, url, params=params, json=json, idempotent=idempotent, auth=auth)
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            self._api_usage = usage
        if response.is_success:
            return response
        raise self._data_error(response)

    def _url(self, instance_url: str, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"a Salesforce API path starts with '/'; got {path!r}")
        if path.startswith("/services/"):
            return instance_url + path
        return f"{instance_url}/services/data/{self.credentials.api_version}{path}"

    def _data_error(self, response: httpx.Response) -> ConnectorError:
        endpoint = endpoint_of(response)
        status = response.status_code
        details = _error_entries(response)
        first = details[0] if details else {}
        code = str(first.get("errorCode") or "") or None
        server_says = self._redact(str(first.get("message") or "").strip()) or f"HTTP {status}"
        if first.get("fields"):
            server_says += f" (fields: {', '.join(map(str, first['fields']))})"
        what = f"Salesforce refused {endpoint} ({code + ': ' if code else ''}{server_says})"
        if status == 401:
            return SessionRejected(
                f"{what}, even with a freshly issued token: the session is revoked as soon as it is "
                "issued. Check the connected app's session policies (IP restrictions, 'Lock sessions to "
                "the IP address from which they originated') and that the user is active.",
                system=SYSTEM, endpoint=endpoint, status_code=status, error_code=code,
            )
        if code == "REQUEST_LIMIT_EXCEEDED":
            usage = f" ({self._api_usage.used}/{self._api_usage.limit} used)" if self._api_usage else ""
            error_type: type[ApiError] = RequestLimitExceeded
            advice = (
                f"the org's 24-hour API request budget is spent{usage}. Calls fail until it replenishes "
                "(a rolling 24 hours); poll less often, or ask Salesforce for a higher limit. "
                "Not retried automatically"
            )
        elif code in _DATA_ERRORS:
            error_type, advice = _DATA_ERRORS[code]
        elif status == 404:
            error_type, advice = _DATA_ERRORS["NOT_FOUND"]
        elif status == 403:
            error_type, advice = _DATA_ERRORS["INSUFFICIENT_ACCESS"]
        else:
            error_type, advice = ApiError, "see Salesforce's message"
        return error_type(
            f"{what}: {advice}.",
            system=SYSTEM, endpoint=endpoint, status_code=status, error_code=code, details=details,
        )

    def _save_failure(self, endpoint: str, result: SaveResult) -> ApiError:
        first = result.errors[0] if result.errors else SaveError(statusCode="UNKNOWN", message="no reason given")
        error_type, advice = _DATA_ERRORS.get(first.status_code, (ApiError, "see Salesforce's message"))
        message = self._redact(first.message)
        return error_type(
            f"Salesforce refused {endpoint} ({first.status_code}: {message}): {advice}.",
            system=SYSTEM,
            endpoint=endpoint,
            error_code=first.status_code,
            details=tuple(error.model_dump(by_alias=True) for error in result.errors),
        )

    def _redact(self, text: str) -> str:
        return redact(text, [*self.credentials.secret_values(), *self._tokens.secret_values()])


def _sobject(name: str) -> str:
    if not _SOBJECT_NAME.fullmatch(name):
        raise ValueError(f"not a Salesforce object API name: {name!r} (letters, digits, underscores)")
    return name


def _record_id(record_id: str) -> str:
    if not _RECORD_ID.fullmatch(record_id):
        raise ValueError(f"not a Salesforce record Id (15 or 18 letters and digits): {record_id!r}")
    return record_id


def _record_type(record: Mapping[str, Any], index: int) -> str:
    attributes = record.get("attributes")
    sobject = attributes.get("type") if isinstance(attributes, Mapping) else None
    if not isinstance(sobject, str):
        raise ValueError(f"record {index} has no attributes.type: give each record {{'attributes': {{'type': 'Obj'}}}}")
    return _sobject(sobject)


def _check_one_kind(records: list[dict[str, Any]]) -> None:
    types = {_record_type(record, index) for index, record in enumerate(records)}
    setup = sorted(types & SETUP_OBJECTS)
    other = sorted(types - SETUP_OBJECTS)
    if setup and other:
        raise ValueError(
            f"Salesforce can't save setup objects ({', '.join(setup)}) and other objects "
            f"({', '.join(other)}) in one call: send them in separate create_many calls"
        )


def _error_entries(response: httpx.Response) -> tuple[dict[str, Any], ...]:
    try:
        body = response.json()
    except ValueError:
        return ()
    if isinstance(body, dict):
        body = [body]
    if isinstance(body, list):
        return tuple(entry for entry in body if isinstance(entry, dict))
    return ()


def _failed_result(error: ConnectorError) -> SaveResult:
    return SaveResult(
        success=False,
        errors=(SaveError(statusCode=error.error_code or type(error).__name__, message=str(error)),),
    )


