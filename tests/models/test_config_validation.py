"""Every config mistake the brief lists is reported at its path, with the problem and the fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from presence_sync.models.config import developer_name_problem, parse_config, suggest_developer_name
from presence_sync.models.errors import ConfigError

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-contact-center.yaml"
DEMO_TEXT = DEMO.read_text(encoding="utf-8")
DEMO_ENV = {name: f"fake-{name.lower()}" for name in re.findall(r"\$\{(\w+)\}", DEMO_TEXT)}
PEM = "-----BEGIN PRIVATE KEY-----\nMIIfake\n-----END PRIVATE KEY-----\n"

Mutation = Callable[[dict[str, Any]], None]


def put(path: str, value: Any) -> Mutation:
    """Set a value at a dotted path (`rule.subscriber.3.acd`)."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        for part in parents:
            data = data[part]
        data[last] = value

    return mutate


def drop(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        for part in parents:
            data = data[part]
        del data[last]

    return mutate


def append(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        for part in path.split("."):
            data = data[int(part) if part.isdigit() else part]
        data.append(value)

    return mutate


def problems_after(*mutations: Mutation) -> ConfigError:
    data = yaml.safe_load(DEMO_TEXT)
    for mutate in mutations:
        mutate(data)
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(data, sort_keys=False), config_dir=Path("/nonexistent"), environ=DEMO_ENV)
    return caught.value


CASES: list[tuple[str, list[Mutation], str, list[str]]] = [
    ("duplicate label", [append("statuses", {"label": "Lunch", "developer_name": "Lunch_2", "option": "busy"})],
     "statuses[9].label", ["'Lunch'", "already used by statuses[3]"]),
    ("duplicate developer name", [append("statuses", {"label": "Late Lunch", "developer_name": "lunch", "option": "busy"})],
     "statuses[9].developer_name", ["already used by statuses[3]"]),
    ("invalid developer name characters", [append("statuses", {"label": "X", "developer_name": "On-Break", "option": "busy"})],
     "statuses[9].developer_name", ["'-'", "only letters, digits and underscores", "On_Break"]),
    ("developer name with double underscore", [append("statuses", {"label": "X", "developer_name": "On__Break", "option": "busy"})],
     "statuses[9].developer_name", ["two underscores"]),
    ("developer name with trailing underscore", [append("statuses", {"label": "X", "developer_name": "Break_", "option": "busy"})],
     "statuses[9].developer_name", ["ends with an underscore"]),
    ("developer name starting with a digit", [append("statuses", {"label": "X", "developer_name": "2nd_Break", "option": "busy"})],
     "statuses[9].developer_name", ["start with a letter"]),
    ("developer name too long", [append("statuses", {"label": "X", "developer_name": "A" * 81, "option": "busy"})],
     "statuses[9].developer_name", ["81 characters", "at most 80"]),
    ("label whose derived name is invalid", [append("statuses", {"label": "On-Break", "option": "busy"})],
     "statuses[9].label", ["derived from this label", "'On-Break'", "developer_name: On_Break"]),
    ("online status without channels", [append("statuses", {"label": "Ready", "option": "online"})],
     "statuses[9].channels", ["online status needs at least one", "option: busy"]),
    ("busy status with channels", [append("statuses", {"label": "Away", "option": "busy", "channels": ["sfdc_chat"]})],
     "statuses[9].channels", ["busy status can't have channels", "option: online"]),
    ("publisher row naming an undefined status", [append("rules.0.publisher", {"acd": "Dialer", "salesforce": "On_Brake"})],
     "rules[0].publisher[8].salesforce", ["'On_Brake' is not defined", "did you mean 'On_Break'"]),
    ("subscriber row naming an undefined status", [put("rules.0.subscriber.0.salesforce", "Ghost")],
     "rules[0].subscriber[0].salesforce", ["'Ghost' is not defined under statuses"]),
    ("ACW as a subscriber target", [put("rules.0.subscriber.3.acd", "ACW")],
     "rules[0].subscriber[3].acd", ["'ACW' is system-managed", "can't be a subscriber target"]),
    ("Refused as a subscriber target", [put("rules.0.subscriber.3.acd", "Refused")],
     "rules[0].subscriber[3].acd", ["'Refused' is system-managed"]),
    ("a contact state as a subscriber target", [put("rules.0.subscriber.3.acd", "InboundContact")],
     "rules[0].subscriber[3].acd", ["CXone sets itself", "Previous State"]),
    ("LoggedOut as a subscriber target", [put("rules.0.subscriber.3.acd", "LoggedOut")],
     "rules[0].subscriber[3].acd", ["CXone sets itself"]),
    ("Previous State on the publisher side", [put("rules.0.publisher.0.acd", "Previous State")],
     "rules[0].publisher[0].acd", ["only a subscriber target"]),
    ("misspelled ACD state", [put("rules.0.subscriber.1.acd", "Availble")],
     "rules[0].subscriber[1].acd", ["'Availble' is not an ACD state", "did you mean 'Available'"]),
    ("bare unavailable code", [put("rules.0.subscriber.2.acd", "Break")],
     "rules[0].subscriber[2].acd", ["not an ACD state", "'Unavailable: Break'"]),
    ("Unavailable without a code after the colon", [put("rules.0.publisher.1.acd", "Unavailable:")],
     "rules[0].publisher[1].acd", ["no code after the colon"]),
    ("ACW written as an unavailable code", [put("rules.0.publisher.6.acd", "Unavailable: ACW")],
     "rules[0].publisher[6].acd", ["system-managed state, not an unavailable code", "write 'ACW'"]),
    ("the seed's Open", [put("rules.0.publisher.0.acd", "Open")],
     "rules[0].publisher[0].acd", ["Agent Embedded", "write 'Available'"]),
    ("two subscriber rows for one status", [append("rules.0.subscriber", {"salesforce": "lunch", "acd": "Unavailable: Break"})],
     "rules[0].subscriber[6].salesforce", ["already mapped by subscriber[3]"]),
    ("two publisher rows for one ACD state", [append("rules.0.publisher", {"acd": "unavailable:Break", "salesforce": "Lunch"})],
     "rules[0].publisher[8].acd", ["'Unavailable: Break' is already mapped by publisher[1]"]),
    ("rule assigned to nothing", [put("rules.0.teams", []), put("rules.0.users", [])],
     "rules[0]", ["assigned to nothing", "teams:", "users:"]),
    ("rule mapping nothing", [put("rules.0.publisher", []), put("rules.0.subscriber", [])],
     "rules[0]", ["maps nothing"]),
    ("sandbox with the production login host", [put("salesforce.environment", "sandbox"), put("salesforce.login_url", "https://login.salesforce.com")],
     "salesforce.login_url", ["login.salesforce.com is a production login host", "environment is sandbox", "test.salesforce.com"]),
    ("sandbox with a production My Domain", [put("salesforce.environment", "sandbox"), put("salesforce.login_url", "https://acme.my.salesforce.com")],
     "salesforce.login_url", ["production login host", "sandbox.my.salesforce.com"]),
    ("production with the sandbox login host", [put("salesforce.login_url", "https://test.salesforce.com")],
     "salesforce.login_url", ["sandbox login host", "environment is production", "environment: sandbox"]),
    ("production with a sandbox My Domain", [put("salesforce.login_url", "https://acme--uat.sandbox.my.salesforce.com")],
     "salesforce.login_url", ["sandbox login host"]),
    ("client_credentials without a login_url", [drop("salesforce.login_url"),
                                                 put("salesforce.auth", {"flow": "client_credentials", "client_id": "a", "client_secret": "b"})],
     "salesforce.login_url", ["client_credentials flow only works on your org's My Domain", ".my.salesforce.com"]),
    ("client_credentials on login.salesforce.com", [put("salesforce.login_url", "https://login.salesforce.com"),
                                                     put("salesforce.auth", {"flow": "client_credentials", "client_id": "a", "client_secret": "b"})],
     "salesforce.login_url", ["My Domain"]),
    ("jwt without a key", [put("salesforce.auth", {"flow": "jwt", "client_id": "a", "username": "u@acme.com"})],
     "salesforce.auth", ["jwt flow needs the app's private key", "private_key_file"]),
    ("jwt with both keys", [put("salesforce.auth", {"flow": "jwt", "client_id": "a", "username": "u", "private_key": PEM,
                                                     "private_key_file": str(DEMO)})],
     "salesforce.auth.private_key_file", ["both private_key and private_key_file"]),
    ("jwt key that is not PEM", [put("salesforce.auth", {"flow": "jwt", "client_id": "a", "username": "u", "private_key": "abc"})],
     "salesforce.auth.private_key", ["not a PEM private key"]),
    ("jwt key file that does not exist", [put("salesforce.auth", {"flow": "jwt", "client_id": "a", "username": "u", "private_key_file": "keys/none.key"})],
     "salesforce.auth.private_key_file", ["file not found", "none.key", "config file's folder"]),
    ("a setting of another flow", [put("salesforce.auth", {"flow": "jwt", "client_id": "a", "username": "u", "private_key": PEM, "client_secret": "s"})],
     "salesforce.auth.client_secret", ["not used by the jwt flow"]),
    ("unknown flow", [put("salesforce.auth.flow", "passwrd")],
     "salesforce.auth.flow", ["'passwrd' is not supported", "did you mean 'password'", "client_credentials"]),
    ("missing flow", [drop("salesforce.auth.flow")],
     "salesforce.auth.flow", ["is missing", "password, client_credentials, jwt"]),
    ("missing required setting", [drop("salesforce.auth.username")],
     "salesforce.auth.username", ["required setting is missing", "add `username:`", "integration user"]),
    ("misspelled key", [drop("salesforce.auth.username"), put("salesforce.auth.usrname", "u")],
     "salesforce.auth.usrname", ["unknown setting 'usrname'", "did you mean 'username'"]),
    ("misspelled top-level key", [lambda data: data.__setitem__("Rules", data.pop("rules"))],
     "Rules", ["unknown setting 'Rules'", "did you mean 'rules'"]),
    ("misspelled sync key", [put("sync.max_concurency", 3)],
     "sync.max_concurency", ["did you mean 'max_concurrency'"]),
    ("unknown environment", [put("salesforce.environment", "prod")],
     "salesforce.environment", ["not one of the allowed values", "'production' or 'sandbox'"]),
    ("cxone with tenant id and explicit endpoints", [put("cxone.tenant_id", "abc")],
     "cxone.tenant_id", ["both tenant_id and explicit endpoints"]),
    ("cxone with neither", [drop("cxone.auth_url"), drop("cxone.api_url")],
     "cxone", ["no way to find CXone", "tenant_id"]),
    ("cxone with only auth_url", [drop("cxone.api_url")],
     "cxone.api_url", ["auth_url is set but api_url is missing"]),
    ("cxone discovery_url without tenant_id", [put("cxone.discovery_url", "https://cxone.niceincontact.com")],
     "cxone.discovery_url", ["only used with tenant_id"]),
    ("profile naming an undefined status", [put("profiles.1.statuses", ["Available", "On_Brake"])],
     "profiles[1].statuses[1]", ["'On_Brake' is not defined", "did you mean 'On_Break'"]),
    ("profile statuses neither all nor a list", [put("profiles.0.statuses", "everything")],
     "profiles[0].statuses", ["must be 'all' or a list"]),
    ("duplicate profile", [append("profiles", {"name": "contact center agent", "statuses": "all"})],
     "profiles[2].name", ["already listed at profiles[0]"]),
    ("plain http to Salesforce", [put("salesforce.login_url", "http://acme.my.salesforce.com")],
     "salesforce.login_url", ["only accepts https"]),
    ("login_url that is not a URL", [put("salesforce.login_url", "localhost:8401")],
     "salesforce.login_url", ["not an http(s) URL"]),
    ("unquoted numeric secret", [put("salesforce.auth.password", 1234)],
     "salesforce.auth.password", ["must be text", "quotes"]),
    ("secret reference in a non-secret setting", [put("cxone.access_key_user", "prefect-secret:user")],
     "cxone.access_key_user", ["only work for secret settings"]),
    ("prefect-secret without a block name", [put("cxone.client_secret", "prefect-secret:")],
     "cxone.client_secret", ["must be followed by a Prefect block name"]),
    ("empty secret", [put("cxone.client_secret", "")],
     "cxone.client_secret", ["is empty"]),
    ("zero interval", [put("sync.interval_seconds", 0)],
     "sync.interval_seconds", ["greater than 0"]),
    ("unknown conflict policy", [put("sync.conflict_policy", "cxone")],
     "sync.conflict_policy", ["'newest_wins', 'cxone_wins' or 'salesforce_wins'"]),
    ("store URL of another database", [put("sync.store_url", "mysql://sync:pw@db/presence")],
     "sync.store_url", ["'mysql' databases are not supported", "sqlite:///", "postgresql://"]),
    ("in-memory SQLite store", [put("sync.store_url", "sqlite:///:memory:")],
     "sync.store_url", ["in-memory", "forgets"]),
    ("store URL that is not a URL", [put("sync.store_url", "state.db")],
     "sync.store_url", ["not a database URL"]),
    ("two links for one agent", [put("links", [{"cxone_agent": 7, "salesforce_user": "a@x.com"}, {"cxone_agent": "7", "salesforce_user": "b@x.com"}])],
     "links[1].cxone_agent", ["already linked by links[0]"]),
    ("one Salesforce user linked twice", [put("links", [{"cxone_agent": 7, "salesforce_user": "a@x.com"}, {"cxone_agent": 8, "salesforce_user": "A@x.com"}])],
     "links[1].salesforce_user", ["already linked by links[0]"]),
    ("YAML boolean as a label", [append("statuses", {"label": True, "option": "busy"})],
     "statuses[9].label", ["must be text", "quotes"]),
    ("a team listed twice", [put("rules.0.teams", ["Voice Team A", "voice team a"])],
     "rules[0].teams[1]", ["listed twice"]),
    ("two rules with one name", [put("rules.1.name", "default presence")],
     "rules[1].name", ["'default presence' is already the name of rules[0]", "give each rule its own name"]),
    ("a team in two rules", [append("rules.1.teams", "voice team b")],
     "rules[1].teams[1]", ["team 'voice team b' is also assigned to rule 'Default Presence' (rules[0].teams[1])",
                           "assign each team to one rule"]),
    ("a user in two rules", [put("rules.0.users", ["agent7@example.com"]), put("rules.1.users", ["Agent7@example.com"])],
     "rules[1].users[0]", ["user 'Agent7@example.com' is also assigned to rule 'Default Presence' (rules[0].users[0])",
                           "assign each user to one rule"]),
    ("both rule and rules", [lambda data: data.__setitem__("rule", data["rules"][1])],
     "rule", ["given as well as rules", "move this rule into the rules list"]),
    ("no rule at all", [drop("rules")],
     "", ["no presence rule", "add rules:"]),
    ("CXone logout to an undefined status", [put("rules.0.on_cxone_logout", "On_Brake")],
     "rules[0].on_cxone_logout", ["'On_Brake' is not defined", "did you mean 'On_Break'"]),
    ("CXone logout to something that is not a status", [put("rules.0.on_cxone_logout", "log out")],
     "rules[0].on_cxone_logout", ["Offline (log out of Omni-Channel), a status developer name, or nothing"]),
    ("Omni logout to Available", [put("rules.1.on_omni_logout", "Available")],
     "rules[1].on_omni_logout", ["'Available' can't follow a logout of Omni-Channel", "LoggedOut"]),
    ("Omni logout to a misspelled state", [put("rules.1.on_omni_logout", "Unavailble")],
     "rules[1].on_omni_logout", ["not an ACD state", "did you mean 'Unavailable'"]),
    ("CXone logout said twice", [append("rules.0.publisher", {"acd": "LoggedOut", "salesforce": "On_Break"})],
     "rules[0].on_cxone_logout", ["publisher[8] already says what a CXone logout does", "say it once"]),
    ("no statuses", [put("statuses", [])],
     "statuses", ["at least 1"]),
    ("contact email", [put("connected_app.contact_email", "admin")],
     "connected_app.contact_email", ["not an email address"]),
]


@pytest.mark.parametrize(("mutations", "path", "words"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_mistake_is_reported_at_its_path_with_a_fix(mutations: list[Mutation], path: str, words: list[str]) -> None:
    error = problems_after(*mutations)

    matching = [problem for problem in error.problems if problem.path == path]
    assert matching, f"no problem at {path}: {error}"
    text = str(matching[0])
    for word in words:
        assert word in text
    assert " -> " in text and matching[0].fix
    assert matching[0].line is not None


def test_all_problems_of_independent_sections_come_together() -> None:
    error = problems_after(put("salesforce.environment", "prod"), put("sync.interval_seconds", -1), put("rules.0.subscriber.3.acd", "ACW"))

    assert {problem.path for problem in error.problems} == {"salesforce.environment", "sync.interval_seconds", "rules[0].subscriber[3].acd"}
    assert str(error).count("\n  - ") == 3


def test_error_text_carries_no_traceback_noise_or_pydantic_urls() -> None:
    text = str(problems_after(put("sync.conflict_policy", "cxone")))

    assert "errors.pydantic.dev" not in text and "Traceback" not in text and "type=" not in text


def test_problem_lines_point_into_the_yaml() -> None:
    text = DEMO_TEXT.replace("- {salesforce: Lunch, acd: \"Unavailable: Lunch\"}", "- {salesforce: Lunch, acd: ACW}")
    line = next(number for number, content in enumerate(text.splitlines(), 1) if "acd: ACW}" in content)

    with pytest.raises(ConfigError) as caught:
        parse_config(text, config_dir=Path("/nonexistent"), environ=DEMO_ENV)

    assert [(problem.path, problem.line) for problem in caught.value.problems] == [("rules[0].subscriber[3].acd", line)]


@given(st.text(max_size=100))
def test_suggested_developer_names_are_always_valid(text: str) -> None:
    assert developer_name_problem(suggest_developer_name(text)) is None
