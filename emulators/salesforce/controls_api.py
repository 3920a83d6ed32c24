"""The emulator's own controls under `/__emulator/` (apis.md, "The emulators' own controls")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from presence_sync.emulators.demo_center import AGENT_PROFILE
from presence_sync.emulators.faults import FaultSettings
from presence_sync.emulators.salesforce.consoles import MANUAL_REASON
from presence_sync.emulators.salesforce.emulator import OrgUpdate, SalesforceEmulator
from presence_sync.emulators.salesforce.hosts import resolve_hosts

router = APIRouter(prefix="/__emulator")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResetBody(_Body):
    seed: int | None = None


class UserBody(_Body):
    username: str
    email: str
    name: str
    profile: str = AGENT_PROFILE


class ProfileBody(_Body):
    name: str


class ChannelBody(_Body):
    developer_name: str
    label: str
    related_entity: str


class ConsoleBody(_Body):
    open: bool
    apply_delay_ms: int | None = Field(None, ge=0)
    denied_statuses: list[str] | None = Field(
        None, description="DeveloperNames the Omni toolkit refuses this console (its commands fail)")


class PresenceBody(_Body):
    status: str | None = Field(description="the status's DeveloperName; null logs the agent out of Omni")
    reason: str = Field(MANUAL_REASON, description="what omniChannelStatusChanged reports, pushed to the gateway")


class GatewayBody(_Body):
    url: str = Field(description="the console gateway's WebSocket URL, e.g. ws://127.0.0.1:8765/console")
    secret: str = Field(min_length=32, description="the secret the org shares with the gateway")
    user_ids: list[str] | None = Field(None, description="whose consoles connect; null: every active user")


def _emulator(request: Request) -> SalesforceEmulator:
    return request.app.state.emulator  # type: ignore[no-any-return]


@router.post("/reset")
async def reset(request: Request, body: ResetBody | None = None) -> dict[str, Any]:
    emulator = _emulator(request)
    emulator.reset(body.seed if body else None)
    return {"seed": emulator.seed}


@router.put("/faults")
async def faults(request: Request, body: FaultSettings) -> dict[str, Any]:
    _emulator(request).faults.configure(body)
    return body.model_dump()


@router.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    return _emulator(request).stats()


@router.get("/credentials")
async def credentials(request: Request) -> dict[str, Any]:
    emulator = _emulator(request)
    return emulator.credentials(resolve_hosts(request.headers.get("host"), request.url.scheme, emulator.options))


@router.get("/org")
async def org(request: Request) -> dict[str, Any]:
    return _emulator(request).org_settings()


@router.put("/org")
async def configure_org(request: Request, body: OrgUpdate) -> dict[str, Any]:
    return _emulator(request).configure_org(body)


@router.post("/users", status_code=201)
async def create_user(request: Request, body: UserBody) -> dict[str, Any]:
    user = _emulator(request).create_user(body.username, body.email, body.name, body.profile)
    return {"id": user.id}


@router.post("/profiles", status_code=201)
async def create_profile(request: Request, body: ProfileBody) -> dict[str, Any]:
    return {"id": _emulator(request).create_profile(body.name)}


@router.post("/channels", status_code=201)
async def create_channel(request: Request, body: ChannelBody) -> dict[str, Any]:
    return {"id": _emulator(request).create_channel(body.developer_name, body.label, body.related_entity)}


def _user_view(emulator: SalesforceEmulator, user_id: str) -> dict[str, Any]:
    with emulator.lock:
        user = emulator.user(user_id)
        return {
            "id": user.id, "username": user.username, "email": user.email, "name": user.name,
            "profile": user.profile, "is_active": user.is_active,
            "console": emulator.console(user.id).as_dict(), "presence": emulator.current_presence(user.id),
        }


@router.get("/users/{user_id}")
async def get_user(request: Request, user_id: str) -> dict[str, Any]:
    return _user_view(_emulator(request), user_id)


@router.put("/users/{user_id}/console")
async def set_console(request: Request, user_id: str, body: ConsoleBody) -> dict[str, Any]:
    return _emulator(request).set_console(user_id, body.open, body.apply_delay_ms, body.denied_statuses).as_dict()


@router.put("/users/{user_id}/presence")
async def set_presence(request: Request, user_id: str, body: PresenceBody) -> dict[str, Any]:
    emulator = _emulator(request)
    changed = emulator.set_presence(user_id, body.status, body.reason)
    return {"status": emulator.current_presence(user_id), "changed": changed}


@router.put("/gateway")
async def connect_gateway(request: Request, body: GatewayBody) -> dict[str, Any]:
    """The agents' consoles connect to a presence-sync console gateway (and leave any previous one)."""
    emulator = _emulator(request)
    users = emulator.connect_consoles(body.url, body.secret, body.user_ids)
    return {"url": body.url, "consoles": len(users)}


@router.get("/gateway")
async def gateway(request: Request) -> dict[str, Any]:
    return _emulator(request).consoles.stats()


@router.delete("/gateway")
async def disconnect_gateway(request: Request) -> dict[str, Any]:
    _emulator(request).disconnect_consoles()
    return {"consoles": 0}
