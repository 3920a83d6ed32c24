"""The demo contact center of product.md: one definition for the emulators, tests, demo and bench.

The emulators seed only what exists *before* onboarding (channels, profiles, users; codes, teams,
agents). Statuses, profile access, links and the rule are what onboarding creates from the config, so
they appear here only as the reference the demo config (`examples/demo-contact-center.yaml`) describes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChannelSpec:
    developer_name: str
    label: str
    related_entity: str


@dataclass(frozen=True)
class StatusSpec:
    label: str
    developer_name: str
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodeSpec:
    name: str
    is_acw: bool = False


@dataclass(frozen=True)
class TeamSpec:
    name: str
    codes: tuple[str, ...]


@dataclass(frozen=True)
class AgentSpec:
    index: int
    first_name: str
    last_name: str
    email: str
    team: str
    has_salesforce_user: bool


CHANNELS = (
    ChannelSpec("sfdc_phone", "Phone", "VoiceCall"),
    ChannelSpec("sfdc_chat", "Chat", "LiveChatTranscript"),
    ChannelSpec("sfdc_case", "Case", "Case"),
)

STATUSES = (
    StatusSpec("Available for Chats", "Available_for_Chats", ("sfdc_chat",)),
    StatusSpec("Available", "Available", ("sfdc_phone", "sfdc_chat", "sfdc_case")),
    StatusSpec("On Break", "On_Break"),
    StatusSpec("Lunch", "Lunch"),
    StatusSpec("On a Call", "On_a_Call"),
    StatusSpec("After Call Work", "After_Call_Work"),
    StatusSpec("Missed Contact", "Missed_Contact"),
    StatusSpec("Case Work", "Case_Work"),
    StatusSpec("Resume Previous", "Resume_Previous", ("sfdc_case",)),
)

AGENT_PROFILE = "Contact Center Agent"
SUPERVISOR_PROFILE = "Contact Center Supervisor"
ADMIN_PROFILE = "System Administrator"
PROFILES = (AGENT_PROFILE, SUPERVISOR_PROFILE)

UNAVAILABLE_CODES = (CodeSpec("Break"), CodeSpec("Lunch"), CodeSpec("CRM Work"), CodeSpec("ACW", is_acw=True))

VOICE_TEAMS = (
    TeamSpec("Voice Team A", ("Break", "Lunch", "CRM Work", "ACW")),
    TeamSpec("Voice Team B", ("Break", "Lunch", "ACW")),
)
CHAT_TEAM = TeamSpec("Chat Team", ("Break", "Lunch", "CRM Work", "ACW"))
TEAMS = (*VOICE_TEAMS, CHAT_TEAM)

RULE_NAME = "Default Presence"  # the voice teams' rule
CHAT_RULE_NAME = "Chat Presence"  # the chat team's rule, which maps Salesforce's "Available" statuses differently

# The integration identities: the Salesforce user the password/JWT flows log in as, and the CXone
# user whose access key the sync uses.
SALESFORCE_INTEGRATION_USERNAME = "integration@example.com"
CXONE_ACCESS_KEY_USER = "integration@example.com"

DEFAULT_AGENT_COUNT = 200
NO_SALESFORCE_USER_EVERY = 50
CHAT_TEAM_EVERY = 10


def team_of(index: int) -> str:
    """Every 10th agent is on the chat team; the others alternate between the voice teams (odd: A, even: B)."""
    if index % CHAT_TEAM_EVERY == 0:
        return CHAT_TEAM.name
    return VOICE_TEAMS[(index - 1) % len(VOICE_TEAMS)].name


def demo_agents(count: int = DEFAULT_AGENT_COUNT) -> list[AgentSpec]:
    """Agents 1..count (teams by `team_of`); every 50th has no Salesforce user (so stays unlinked)."""
    return [
        AgentSpec(
            index=i,
            first_name="Agent",
            last_name=str(i),
            email=f"agent{i}@example.com",
            team=team_of(i),
            has_salesforce_user=i % NO_SALESFORCE_USER_EVERY != 0,
        )
        for i in range(1, count + 1)
    ]
