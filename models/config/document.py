"""The whole config file of one contact center, and the checks that span its sections."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Self

from pydantic import Field, ValidationInfo, model_validator

from presence_sync.engine.errors import did_you_mean
from presence_sync.models.config.base import ENVIRON_CONTEXT_KEY, ConfigModel, duplicates
from presence_sync.models.config.connections import CxoneConfig, SalesforceConfig
from presence_sync.models.config.contact_center import (
    ALL_STATUSES,
    ConnectedAppConfig,
    LinkOverride,
    PresenceRuleConfig,
    PresenceStatusConfig,
    ProfileConfig,
)
from presence_sync.models.config.console import ConsoleSettings
from presence_sync.models.config.sync import SyncSettings
from presence_sync.models.errors import Loc, config_problems, format_path
from presence_sync.models.secrets import expand_env_references, label_secret_references


class PresenceSyncConfig(ConfigModel):
    """One contact center's presence-sync config (the YAML file, validated)."""

    salesforce: SalesforceConfig
    cxone: CxoneConfig
    statuses: tuple[PresenceStatusConfig, ...] = Field(min_length=1)
    profiles: tuple[ProfileConfig, ...] = ()
    connected_app: ConnectedAppConfig | None = None
    rules: tuple[PresenceRuleConfig, ...] = ()
    rule: PresenceRuleConfig | None = Field(default=None, description="the one-rule form of `rules`")
    links: tuple[LinkOverride, ...] = ()
    sync: SyncSettings = Field(default_factory=dict, validate_default=True)  # type: ignore[arg-type]
    console: ConsoleSettings = Field(default_factory=dict, validate_default=True)  # type: ignore[arg-type]

    @model_validator(mode="before")
    @classmethod
    def _expand_environment(cls, data: Any, info: ValidationInfo) -> Any:
        environ = (info.context or {}).get(ENVIRON_CONTEXT_KEY)
        return expand_env_references(data, os.environ if environ is None else environ)

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        problems = [*self._status_problems(), *self._profile_problems(), *self._rule_problems(), *self._link_problems()]
        if problems:
            raise config_problems(*problems)
        label_secret_references(self)
        return self

    @property
    def presence_rules(self) -> tuple[PresenceRuleConfig, ...]:
        """Every presence rule, whichever form the file used (`rules:` a list, `rule:` the one-rule form)."""
        return self.rules or ((self.rule,) if self.rule is not None else ())

    def rule_paths(self) -> list[tuple[Loc, PresenceRuleConfig]]:
        """Each rule with where it is in the file: ("rules", i), or ("rule",) for the one-rule form."""
        if self.rules:
            return [(("rules", index), rule) for index, rule in enumerate(self.rules)]
        return [(("rule",), self.rule)] if self.rule is not None else []

    def rule_path(self, rule: PresenceRuleConfig) -> str:
        """How errors name a rule's place: `rules[1]`, or `rule`."""
        return next((format_path(path) for path, each in self.rule_paths() if each is rule), "rules")

    def profile_statuses(self, profile: ProfileConfig) -> tuple[str, ...]:
        """The developer names a profile gets, with `all` expanded."""
        if profile.statuses == ALL_STATUSES:
            return tuple(status.developer_name for status in self.statuses)
        return tuple(profile.statuses)

    def _status_problems(self) -> Iterable[tuple[Loc, str, str]]:
        for field in ("label", "developer_name"):
            for index, first in duplicates(getattr(status, field).casefold() for status in self.statuses):
                problem = f"'{getattr(self.statuses[index], field)}' is already used by statuses[{first}]"
                yield (("statuses", index, field), problem, f"give each status its own {field}")

    def _profile_problems(self) -> Iterable[tuple[Loc, str, str]]:
        for index, first in duplicates(profile.name.casefold() for profile in self.profiles):
            problem = f"profile '{self.profiles[index].name}' is already listed at profiles[{first}]"
            yield (("profiles", index, "name"), problem, "merge the two entries")
        for index, profile in enumerate(self.profiles):
            if profile.statuses == ALL_STATUSES:
                continue
            if not profile.statuses:
                yield (("profiles", index, "statuses"), "lists no statuses", "list developer names or write statuses: all")
            named = [((position,), name) for position, name in enumerate(profile.statuses)]
            yield from self._unknown_statuses(("profiles", index, "statuses"), named)
            for position, first in duplicates(profile.statuses):
                yield (("profiles", index, "statuses", position), "is listed twice", "list it once")

    def _rule_problems(self) -> Iterable[tuple[Loc, str, str]]:
        if self.rule is not None and self.rules:
            yield (("rule",), "is given as well as rules", "keep one form: move this rule into the rules list")
            return
        if self.rule is None and not self.rules:
            fix = "add rules: a list of presence rules (or rule: for a single one), see examples/demo-contact-center.yaml"
            yield ((), "the config has no presence rule", fix)
            return
        placed = self.rule_paths()
        for base, rule in placed:
            yield from self._unknown_statuses(base, rule.statuses_named())
        names: dict[str, Loc] = {}
        for base, rule in placed:
            first = names.setdefault(rule.name.casefold(), base)
            if first != base:
                fix = "give each rule its own name"
                yield (base + ("name",), f"'{rule.name}' is already the name of {format_path(first)}", fix)
        for field, noun, fix in (
            ("teams", "team", "assign each team to one rule (a user assignment gives one agent another rule)"),
            ("users", "user", "assign each user to one rule; a user assignment already overrides the team's rule"),
        ):
            owner: dict[str, tuple[Loc, str]] = {}
            for base, rule in placed:
                for index, value in enumerate(getattr(rule, field)):
                    where = base + (field, index)
                    first, first_rule = owner.setdefault(str(value).casefold(), (where, rule.name))
                    if first != where and first_rule != rule.name:
                        problem = f"{noun} '{value}' is also assigned to rule '{first_rule}' ({format_path(first)})"
                        yield (where, problem, fix)

    def _unknown_statuses(self, base: Loc, named: Iterable[tuple[Loc, str]]) -> Iterable[tuple[Loc, str, str]]:
        defined = [status.developer_name for status in self.statuses]
        for at, name in named:
            if name not in defined:
                fix = f"{did_you_mean(name, defined)}add it under statuses or use a defined developer name"
                yield (base + at, f"status '{name}' is not defined under statuses", fix)

    def _link_problems(self) -> Iterable[tuple[Loc, str, str]]:
        for field in ("cxone_agent", "salesforce_user"):
            for index, first in duplicates(str(getattr(link, field)).casefold() for link in self.links):
                fix = "keep one link per CXone agent and per Salesforce user"
                yield (("links", index, field), f"is already linked by links[{first}]", fix)
