"""`/__emulator/` controls of the CXone emulator (apis.md, "The emulators' own controls").

They play the humans and the weather; they are never part of CXone's own surface, take no token,
and are never hit by injected faults. Each calls the same tenant/authority method the simulator may
call in-process.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from presence_sync.emulators.cxone.emulator import CxoneEmulator, emulator_of
from presence_sync.emulators.cxone.tenant import ContactAction
from presence_sync.emulators.faults import FaultSettings

Emulator = Annotated[CxoneEmulator, Depends(emulator_of)]
AgentId = Annotated[int, Path(alias="agentId")]

controls = APIRouter(prefix="/__emulator")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResetBody(_Body):
    seed: int | None = None


class CredentialsPolicyBody(_Body):
    client_approved: bool | None = None
    access_key_active: bool | None = None
    access_key_user_active: bool | None = None
    agent_scope_team_ids: list[int] | None = Field(
        None, description="teams whose agents the key's user may join or log out; null: every team"
    )


class NewTeamBody(_Body):
    teamName: str
    unavailableCodes: list[str] = []
    isActive: bool = True


class NewCodeBody(_Body):
    name: str
    isACW: bool = False
    isActive: bool = True


class NewAgentBody(_Body):
    firstName: str
    lastName: str
    emailAddress: str
    teamId: int
    userName: str | None = None
    crmUserName: str | None = None
    isActive: bool = True


class AgentChangeBody(_Body):
    isActive: bool | None = None
    teamId: int | None = None
    crmUserName: str | None = Field(None, description='"" clears it')


class SessionBody(_Body):
    open: bool


class StateBody(_Body):
    state: str
    reason: str | None = None


class ContactBody(_Body):
    action: ContactAction


@controls.post("/reset")
async def reset(emulator: Emulator, body: ResetBody | None = None) -> dict[str, Any]:
    emulator.reset((body or ResetBody()).seed)
    return {"reset": True, "agents": emulator.options.agents}


@controls.put("/faults")
async def set_faults(settings: FaultSettings, emulator: Emulator) -> FaultSettings:
    emulator.faults.configure(settings)
    return settings


@controls.get("/stats")
async def stats(emulator: Emulator) -> dict[str, Any]:
    return emulator.faults.stats.snapshot(emulator.clock.now())


@controls.get("/credentials")
async def credentials(emulator: Emulator) -> dict[str, Any]:
    return {**emulator.auth.credentials(), **_policy(emulator)}


@controls.put("/credentials")
async def set_credentials_policy(body: CredentialsPolicyBody, emulator: Emulator) -> dict[str, Any]:
    """Revoke the access key, deactivate its user, un-approve the app, or narrow the agents it may act for."""
    policy = emulator.auth.policy
    for name in body.model_fields_set:
        value = getattr(body, name)
        if name == "agent_scope_team_ids":
            value = None if value is None else frozenset(value)
        elif value is None:
            continue
        setattr(policy, name, value)
    return {**emulator.auth.credentials(), **_policy(emulator)}


def _policy(emulator: CxoneEmulator) -> dict[str, Any]:
    p = emulator.auth.policy
    return {
        "client_approved": p.client_approved,
        "access_key_active": p.access_key_active,
        "access_key_user_active": p.access_key_user_active,
        "agent_scope_team_ids": None if p.agent_scope_team_ids is None else sorted(p.agent_scope_team_ids),
    }


@controls.post("/unavailable-codes", status_code=201)
async def add_unavailable_code(body: NewCodeBody, emulator: Emulator) -> dict[str, int]:
    return {"id": emulator.tenant.add_code(body.name, is_acw=body.isACW, is_active=body.isActive)}


@controls.post("/teams", status_code=201)
async def add_team(body: NewTeamBody, emulator: Emulator) -> dict[str, int]:
    return {"teamId": emulator.tenant.add_team(body.teamName, body.unavailableCodes, is_active=body.isActive)}


@controls.post("/agents", status_code=201)
async def add_agent(body: NewAgentBody, emulator: Emulator) -> dict[str, int]:
    agent_id = emulator.tenant.add_agent(
        body.firstName,
        body.lastName,
        body.emailAddress,
        body.teamId,
        user_name=body.userName,
        crm_user_name=body.crmUserName,
        is_active=body.isActive,
    )
    return {"agentId": agent_id}


@controls.patch("/agents/{agentId}")
async def change_agent(agent_id: AgentId, body: AgentChangeBody, emulator: Emulator) -> JSONResponse:
    record = emulator.tenant.update_agent(
        agent_id, is_active=body.isActive, team_id=body.teamId, crm_user_name=body.crmUserName
    )
    return JSONResponse(record)


@controls.put("/agents/{agentId}/session")
async def set_session(agent_id: AgentId, body: SessionBody, emulator: Emulator) -> JSONResponse:
    session_id = emulator.tenant.set_session(agent_id, body.open)
    return JSONResponse({"sessionId": session_id, "state": emulator.tenant.state(agent_id)})


@controls.get("/agents/{agentId}/state")
async def get_state(agent_id: AgentId, emulator: Emulator) -> JSONResponse:
    return JSONResponse(emulator.tenant.state(agent_id))


@controls.put("/agents/{agentId}/state")
async def set_state(agent_id: AgentId, body: StateBody, emulator: Emulator) -> JSONResponse:
    return JSONResponse(emulator.tenant.set_state(agent_id, body.state, body.reason))


@controls.post("/agents/{agentId}/contact")
async def contact(agent_id: AgentId, body: ContactBody, emulator: Emulator) -> JSONResponse:
    return JSONResponse(emulator.tenant.contact(agent_id, body.action))
