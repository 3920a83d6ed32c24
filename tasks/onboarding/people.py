"""CXone agents and Salesforce users as onboarding sees them, and finding them by what a config names.

    agents = AgentDirectory(await read_agents(ctx.cxone))
    agents.find("agent7@example.com")        # by email or user name (any case), or by agentId (int)
    users = UserDirectory(await read_users(ctx.salesforce))
    users.find("005xx0000012345AAA")          # by User Id (15 or 18 characters) or username
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from presence_sync.connectors import CxoneClient, SalesforceClient


@dataclass(frozen=True, slots=True)
class CxoneAgent:
    agent_id: int
    user_name: str
    email: str | None
    crm_user_name: str | None
    team_id: int | None
    team_name: str | None

    @classmethod
    def from_api(cls, record: dict[str, Any], team_names: dict[int, str]) -> CxoneAgent:
        team_id = int(record["teamId"]) if record.get("teamId") is not None else None
        team_name = record.get("teamName") or (team_names.get(team_id) if team_id is not None else None)
        return cls(
            agent_id=int(record["agentId"]),
            user_name=str(record.get("userName") or record["agentId"]),
            email=record.get("emailAddress") or None,
            crm_user_name=record.get("crmUserName") or None,
            team_id=team_id,
            team_name=team_name,
        )

    @property
    def label(self) -> str:
        return f"{self.user_name} ({self.agent_id})"


@dataclass(frozen=True, slots=True)
class SalesforceUser:
    id: str
    username: str
    email: str | None


async def read_teams(cx: CxoneClient) -> dict[int, str]:
    """Active teams: {teamId: teamName}."""
    return {int(team["teamId"]): str(team.get("teamName") or team["teamId"]) for team in await cx.list_teams()}


async def read_agents(cx: CxoneClient, team_names: dict[int, str] | None = None) -> list[CxoneAgent]:
    """Every active CXone agent (all pages)."""
    names = team_names if team_names is not None else {}
    return [CxoneAgent.from_api(record, names) for record in await cx.list_agents(is_active=True)]


async def read_users(sf: SalesforceClient) -> list[SalesforceUser]:
    """Every active Salesforce user (all pages)."""
    records = await sf.query("SELECT Id, Username, Email FROM User WHERE IsActive = true")
    return [SalesforceUser(r["Id"], r["Username"], r.get("Email") or None) for r in records]


def _fold(text: str | None) -> str:
    return (text or "").strip().casefold()


class AgentDirectory:
    """Agents by id, email and user name (emails may be shared, so lookups give lists)."""

    def __init__(self, agents: Iterable[CxoneAgent]) -> None:
        self.agents = list(agents)
        self._by_id = {agent.agent_id: agent for agent in self.agents}
        self._by_name: dict[str, list[CxoneAgent]] = defaultdict(list)
        for agent in self.agents:
            for name in {_fold(agent.email), _fold(agent.user_name)} - {""}:
                self._by_name[name].append(agent)

    def find(self, reference: int | str) -> list[CxoneAgent]:
        """The agents a config reference names: its agentId, or its email or user name."""
        if isinstance(reference, int):
            agent = self._by_id.get(reference)
            return [agent] if agent else []
        return list(self._by_name.get(_fold(reference), []))


class UserDirectory:
    """Salesforce users by Id (15-character form), username (unique) and email (may be shared)."""

    def __init__(self, users: Iterable[SalesforceUser]) -> None:
        self.users = list(users)
        self._by_id = {user.id[:15]: user for user in self.users}
        self._by_username = {_fold(user.username): user for user in self.users}
        self._by_email: dict[str, list[SalesforceUser]] = defaultdict(list)
        for user in self.users:
            if user.email:
                self._by_email[_fold(user.email)].append(user)

    def find(self, reference: str) -> SalesforceUser | None:
        """A user by its Id (15 or 18 characters) or username."""
        text = reference.strip()
        if text.startswith("005") and len(text) in (15, 18):
            return self._by_id.get(text[:15])
        return self.by_username(text)

    def by_username(self, username: str | None) -> SalesforceUser | None:
        return self._by_username.get(_fold(username)) if username else None

    def by_email(self, email: str | None) -> list[SalesforceUser]:
        return list(self._by_email.get(_fold(email), [])) if email else []
