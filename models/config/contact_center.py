"""The contact center's presence setup: statuses, profiles, the connected app, the rule, agent links."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import Field, GetCoreSchemaHandler, StringConstraints, model_validator
from pydantic_core import core_schema

from presence_sync.engine import CxoneStateName, CxoneTarget
from presence_sync.engine.logouts import DEFAULT_ON_CXONE_LOGOUT, DEFAULT_ON_OMNI_LOGOUT
from presence_sync.models.config.acd_state import PublisherAcdState, SubscriberAcdState
from presence_sync.models.config.base import (
    AgentReference,
    BaseUrl,
    ConfigModel,
    DeveloperName,
    EmailAddress,
    Text,
    derive_developer_name,
    developer_name_problem,
    duplicates,
    suggest_developer_name,
)
from presence_sync.models.config.logout_setting import OnCxoneLogout, OnOmniLogout
from presence_sync.models.errors import Loc, config_problem, config_problems


class StatusOption(StrEnum):
    ONLINE = "online"
    BUSY = "busy"


StatusLabel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]


class PresenceStatusConfig(ConfigModel):
    """A Salesforce presence status onboarding creates or updates."""

    label: StatusLabel = Field(description="the Status Name agents see")
    developer_name: DeveloperName = Field(description="derived from the label when omitted")
    option: StatusOption = Field(description="online (available; needs channels) or busy (away; no channels)")
    channels: tuple[DeveloperName, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _derive_developer_name(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("developer_name") is not None:
            return data
        label = data.get("label")
        if not isinstance(label, str) or not label.strip():
            return {**data, "developer_name": "Unnamed"}  # the label's own error is what gets reported
        derived = derive_developer_name(label)
        problem = developer_name_problem(derived)
        if problem:
            raise config_problem(
                f"the DeveloperName derived from this label, '{derived}', {problem}",
                f"add developer_name: {suggest_developer_name(derived)}",
                at="label",
            )
        return {**data, "developer_name": derived}

    @model_validator(mode="after")
    def _channels_match_option(self) -> Self:
        if self.option is StatusOption.ONLINE and not self.channels:
            raise config_problem(
                "an online status needs at least one service channel",
                "list channels, e.g. [sfdc_phone], or set option: busy",
                at="channels",
            )
        if self.option is StatusOption.BUSY and self.channels:
            raise config_problem(
                "a busy status can't have channels (Salesforce makes a status with channels Online)",
                "remove channels or set option: online",
                at="channels",
            )
        repeated = [(("channels", index), "is listed twice", "list it once") for index, _ in duplicates(self.channels)]
        if repeated:
            raise config_problems(*repeated)
        return self


ALL_STATUSES = "all"


class _StatusSelection:
    """Schema for `statuses: all` or a list of DeveloperNames, without union noise in error paths."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[Any], handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        names = handler.generate_schema(tuple[DeveloperName, ...])

        def select(value: Any, validate_names: core_schema.ValidatorFunctionWrapHandler) -> Any:
            if isinstance(value, str):
                if value.strip().casefold() == ALL_STATUSES:
                    return ALL_STATUSES
                raise config_problem(
                    "must be 'all' or a list of status developer names",
                    "write statuses: all, or e.g. [Available, On_Break]",
                )
            return validate_names(value)

        as_yaml = core_schema.plain_serializer_function_ser_schema(lambda value: value if isinstance(value, str) else list(value))
        return core_schema.no_info_wrap_validator_function(select, names, serialization=as_yaml)


StatusSelection = Annotated[tuple[str, ...] | Literal["all"], _StatusSelection]
"""`all`, or a tuple of status developer names."""


class ProfileConfig(ConfigModel):
    """A Salesforce profile and the presence statuses its users may pick."""

    name: Text = Field(description="the profile's name, e.g. Contact Center Agent")
    statuses: StatusSelection = Field(description="'all' or a list of developer names")


class ConnectedAppConfig(ConfigModel):
    """The Salesforce connected app (or External Client App) whose consumer key is salesforce.auth.client_id."""

    name: Text = Field(description="its name, e.g. NICE CXone Presence Sync")
    contact_email: EmailAddress = Field(description="the admin's email")
    callback_url: BaseUrl = "https://login.salesforce.com/services/oauth2/token"
    scopes: tuple[Text, ...] = ("api",)


# --- the presence rule


class PublisherRow(ConfigModel):
    """CXone -> Salesforce: when CXone shows `acd`, Salesforce shows `salesforce`."""

    acd: PublisherAcdState = Field(description="a CXone state, e.g. 'Unavailable: Break'")
    salesforce: DeveloperName = Field(description="a status developer name from statuses")


class SubscriberRow(ConfigModel):
    """Salesforce -> CXone: when Salesforce shows `salesforce`, CXone is set to `acd`."""

    salesforce: DeveloperName = Field(description="a status developer name from statuses")
    acd: SubscriberAcdState = Field(description="Available, Unavailable: <code> or Previous State")


class PresenceRuleConfig(ConfigModel):
    """A presence rule: publisher and subscriber rows, what a logout on either side does, and who it applies to."""

    name: Text = Field(description="the rule's name, e.g. Default Presence")
    skip_unavailable_code_validation: bool = False
    publisher: tuple[PublisherRow, ...] = ()
    subscriber: tuple[SubscriberRow, ...] = ()
    on_cxone_logout: OnCxoneLogout = Field(
        default=DEFAULT_ON_CXONE_LOGOUT,
        description="what a CXone logout does in Salesforce: Offline (log out of Omni-Channel), a status, or nothing",
    )
    on_omni_logout: OnOmniLogout = Field(
        default=DEFAULT_ON_OMNI_LOGOUT,
        description="what an Omni-Channel logout does in CXone: Unavailable, 'Unavailable: <code>', LoggedOut "
        "(end the CXone session), or nothing",
    )
    teams: tuple[Text, ...] = ()
    users: tuple[AgentReference, ...] = ()

    def unavailable_codes(self) -> frozenset[str]:
        """The CXone unavailable codes the rule names (checked against each team at onboarding)."""
        states = [row.acd for row in self.publisher] + [row.acd for row in self.subscriber]
        codes = {state.code for state in states if state.code}
        if isinstance(self.on_omni_logout, CxoneTarget) and self.on_omni_logout.code:
            codes.add(self.on_omni_logout.code)
        return frozenset(codes)

    def statuses_named(self) -> list[tuple[Loc, str]]:
        """(where, DeveloperName) of every Salesforce status the rule names."""
        named: list[tuple[Loc, str]] = [
            ((side, index, "salesforce"), row.salesforce)
            for side, rows in (("publisher", self.publisher), ("subscriber", self.subscriber))
            for index, row in enumerate(rows)
        ]
        if self.on_cxone_logout is not None and self.on_cxone_logout != DEFAULT_ON_CXONE_LOGOUT:
            named.append((("on_cxone_logout",), self.on_cxone_logout))
        return named

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[Loc | str, str, str]] = []
        for index, first in duplicates(str(row.acd).casefold() for row in self.publisher):
            problem = f"'{self.publisher[index].acd}' is already mapped by publisher[{first}]"
            problems.append((("publisher", index, "acd"), problem, "keep one publisher row per ACD state"))
        for index, first in duplicates(row.salesforce.casefold() for row in self.subscriber):
            problem = f"'{self.subscriber[index].salesforce}' is already mapped by subscriber[{first}]"
            problems.append((("subscriber", index, "salesforce"), problem, "keep one subscriber row per Salesforce status"))
        for field, values in (("teams", self.teams), ("users", self.users)):
            for index, first in duplicates(str(value).casefold() for value in values):
                problems.append(((field, index), f"is listed twice (also {field}[{first}])", "list it once"))
        if not self.publisher and not self.subscriber:
            problems.append(((), "the rule maps nothing", "add publisher and/or subscriber rows"))
        if not self.teams and not self.users:
            assign = "list teams: [Voice Team A] and/or users: [agent emails or CXone agent ids]"
            problems.append(((), "the rule is assigned to nothing", assign))
        logged_out = [i for i, row in enumerate(self.publisher) if row.acd.kind is CxoneStateName.LOGGED_OUT]
        if logged_out and "on_cxone_logout" in self.model_fields_set:
            problems.append((
                ("on_cxone_logout",),
                f"publisher[{logged_out[0]}] already says what a CXone logout does",
                "say it once: keep either that publisher row or on_cxone_logout",
            ))
        if problems:
            raise config_problems(*problems)
        return self


class LinkOverride(ConfigModel):
    """Links a CXone agent to a Salesforce user when email/username matching would not."""

    cxone_agent: AgentReference = Field(description="the CXone agentId or the agent's email/username")
    salesforce_user: Text = Field(description="the Salesforce username or User Id (005...)")


