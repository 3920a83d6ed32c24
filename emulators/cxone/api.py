"""The CXone surface of apis.md C1-C3: discovery, OpenID, token, admin and real-time data, Agent API.

Routes only translate HTTP to the tenant and authority (`tenant.py`, `auth.py`) and back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from presence_sync.emulators.cxone.emulator import CxoneEmulator, emulator_of
from presence_sync.emulators.cxone.errors import BadRequest, NotFound, UnsupportedGrantType
from presence_sync.emulators.cxone.tenant import Page
from presence_sync.emulators.faults import MalformedRecordFault, ShortPagesFault, iso_z, spoil_record, targeted_fault
from presence_sync.emulators.responses import FastJSONResponse

API_PREFIX = "/incontactapi/services/{version}"

Emulator = Annotated[CxoneEmulator, Depends(emulator_of)]
Skip = Annotated[int, Query(ge=0)]
Top = Annotated[int | None, Query(ge=1)]
UpdatedSince = Annotated[str | None, Query(alias="updatedSince")]
IsActive = Annotated[bool | None, Query(alias="isActive")]
TeamId = Annotated[int, Path(alias="teamId")]
AgentId = Annotated[int, Path(alias="agentId")]
SessionId = Annotated[str, Path(alias="sessionId")]

public = APIRouter()


@public.get("/.well-known/cxone-configuration")
async def discovery(
    request: Request, emulator: Emulator, tenant_id: Annotated[str | None, Query(alias="tenantId")] = None
) -> JSONResponse:
    """Where a tenant's auth and API live. Unknown tenant: 404, as the real discovery answers."""
    if not tenant_id:
        raise BadRequest("the tenantId query parameter is required: ?tenantId=<your tenant id>")
    options = emulator.options
    if tenant_id.lower() != options.tenant_id.lower():
        raise NotFound(
            f"no tenant with id {tenant_id!r}: check the tenant id in CXone (Admin > Account Settings > Tenant ID)"
        )
    base = emulator.base_url(request)
    return JSONResponse(
        {
            "private": False,
            "ui_endpoint": base,
            "auth_endpoint": base,
            "api_endpoint": base,
            "area": options.area,
            "cluster": "EMU1",
            "domain": options.domain,
            "tenantId": options.tenant_id,
        }
    )


@public.get("/.well-known/openid-configuration")
async def openid_configuration(request: Request, emulator: Emulator) -> JSONResponse:
    base = emulator.base_url(request)
    return JSONResponse(
        {
            "issuer": base,
            "token_endpoint": f"{base}/auth/token",
            "jwks_uri": f"{base}/auth/jwks",
            "grant_types_supported": ["password", "refresh_token"],
            "response_types_supported": ["token", "id_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "tenantId", "name"],
        }
    )


@public.get("/auth/jwks")
async def jwks(emulator: Emulator) -> JSONResponse:
    return JSONResponse(emulator.auth.jwks())


@public.post("/auth/token")
async def token(
    request: Request, emulator: Emulator, authorization: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """OAuth token endpoint: password grant with an access key, or refresh_token."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise BadRequest("send the token request as a form (Content-Type: application/x-www-form-urlencoded)")
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    grant_type = form.get("grant_type", "")
    issuer = emulator.base_url(request)
    if grant_type == "password":
        username, password = _required_form(form, "username"), _required_form(form, "password")
        answer = emulator.auth.password_grant(authorization, username, password, issuer=issuer)
    elif grant_type == "refresh_token":
        answer = emulator.auth.refresh_grant(authorization, _required_form(form, "refresh_token"), issuer=issuer)
    elif not grant_type:
        raise BadRequest("grant_type is required: 'password' (access key) or 'refresh_token'")
    else:
        raise UnsupportedGrantType(
            f"grant_type {grant_type!r} is not supported: use 'password' with an access key, or 'refresh_token'"
        )
    return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _required_form(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise BadRequest(f"form field {name!r} is required")
    return value


# ---------------------------------------------------------------------- the data and Agent API


# The dependencies are `async def` (they never block): FastAPI runs a plain `def` one in a worker
# thread, three thread hand-offs per request that cost the emulator more than the route itself.
async def _check_version(version: str) -> None:
    major, dot, minor = version.removeprefix("v").partition(".")
    if not (version.startswith("v") and dot and major.isdigit() and minor.isdigit()):
        raise NotFound(f"no API version {version!r}: the path is /incontactapi/services/vNN.0/... (e.g. v33.0)")


async def _check_token(emulator: Emulator, authorization: Annotated[str | None, Header()] = None) -> None:
    emulator.auth.verify_bearer(authorization)


api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(_check_version), Depends(_check_token)])


@api.get("/agents")
async def list_agents(
    request: Request,
    emulator: Emulator,
    skip: Skip = 0,
    top: Top = None,
    updated_since: UpdatedSince = None,
    is_active: IsActive = None,
) -> JSONResponse:
    size = _page_size(request, emulator, top)
    page = emulator.tenant.agents_page(skip, size, updated_since=_parse_since(updated_since), is_active=is_active)
    return _paged(request, emulator, page, "agents", skip, size, with_poll_time=True)


@api.get("/agents/states")
async def agent_states(
    request: Request, emulator: Emulator, skip: Skip = 0, top: Top = None, updated_since: UpdatedSince = None
) -> JSONResponse:
    """Every agent's current state, or the delta since `updatedSince` (inclusive: clients de-duplicate).

    Page through a delta with the same `updatedSince` and send the *first* page's `lastPollTime` next.
    """
    size = _page_size(request, emulator, top)
    page = emulator.tenant.states_page(skip, size, updated_since=_parse_since(updated_since))
    return _paged(request, emulator, page, "agentStates", skip, size, with_poll_time=True)


@api.get("/teams")
async def list_teams(
    request: Request, emulator: Emulator, skip: Skip = 0, top: Top = None, is_active: IsActive = None
) -> JSONResponse:
    size = _page_size(request, emulator, top)
    page = emulator.tenant.teams_page(skip, size, is_active=is_active)
    return _paged(request, emulator, page, "teams", skip, size, with_poll_time=False)


@api.get("/teams/{teamId}/unavailable-codes")
async def team_unavailable_codes(team_id: TeamId, emulator: Emulator) -> JSONResponse:
    return JSONResponse({"unavailableCodes": emulator.tenant.team_codes(team_id)})


@api.get("/unavailable-codes")
async def list_unavailable_codes(
    request: Request, emulator: Emulator, skip: Skip = 0, top: Top = None, is_active: IsActive = None
) -> JSONResponse:
    size = _page_size(request, emulator, top)
    page = emulator.tenant.codes_page(skip, size, is_active=is_active)
    return _paged(request, emulator, page, "unavailableCodes", skip, size, with_poll_time=False)


class JoinSessionBody(BaseModel):
    asAgentId: int


class SetStateBody(BaseModel):
    state: str
    reason: str | None = None


@api.post("/agent-sessions/join")
async def join_session(body: JoinSessionBody, emulator: Emulator) -> JSONResponse:
    session_id = emulator.tenant.join_session(body.asAgentId, emulator.auth.policy.agent_scope_team_ids)
    return JSONResponse({"sessionId": session_id}, status_code=202)


@api.post("/agent-sessions/{sessionId}/state")
async def set_session_state(session_id: SessionId, body: SetStateBody, emulator: Emulator) -> Response:
    emulator.tenant.set_session_state(session_id, body.state, body.reason)
    return Response(status_code=202)


@api.post("/agents/{agentId}/logout")
async def logout_agent(agent_id: AgentId, emulator: Emulator) -> Response:
    emulator.tenant.force_logout(agent_id, emulator.auth.policy.agent_scope_team_ids)
    return Response(status_code=202)


def _page_size(request: Request, emulator: CxoneEmulator, top: int | None) -> int:
    size = min(top or emulator.options.page_size, emulator.options.max_page_size)
    short = targeted_fault(request.scope, ShortPagesFault)  # the API promises no full pages
    return min(size, short.records_per_page) if short is not None else size


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(
            f"updatedSince {value!r} is not an ISO 8601 date-time: send e.g. 2026-11-25T10:00:00.000Z "
            "(the previous response's lastPollTime)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _paged(
    request: Request, emulator: CxoneEmulator, page: Page, key: str, skip: int, top: int, *, with_poll_time: bool
) -> JSONResponse:
    base = f"{emulator.base_url(request)}{request.url.path}"
    query = dict(request.query_params)

    def link(at: int) -> str:
        return f"{base}?{urlencode({**query, 'skip': at, 'top': top})}"

    body: dict[str, Any] = {"totalRecords": page.total}
    if with_poll_time:
        body["lastPollTime"] = iso_z(page.polled_at)
    body["_links"] = {
        "self": link(skip),
        "next": link(skip + top) if skip + top < page.total else None,
        "previous": link(max(0, skip - top)) if skip > 0 else None,
    }
    malformed = targeted_fault(request.scope, MalformedRecordFault)
    body[key] = spoil_record(page.records, malformed) if malformed is not None else page.records
    return FastJSONResponse(body)
