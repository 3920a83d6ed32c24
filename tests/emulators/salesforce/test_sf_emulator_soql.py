"""SOQL: parsing, binding errors in Salesforce's words, and evaluation against a reference filter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence_sync.emulators.faults import EmulatorClock
from presence_sync.emulators.salesforce import SalesforceEmulatorOptions
from presence_sync.emulators.salesforce.dml import create
from presence_sync.emulators.salesforce.errors import SalesforceApiError
from presence_sync.emulators.salesforce.org import SalesforceOrg
from presence_sync.emulators.salesforce.query import run_query
from presence_sync.emulators.salesforce.schema import SERVICE_PRESENCE_STATUS, SETUP_ENTITY_ACCESS
from presence_sync.emulators.salesforce.seed import seed_org
from presence_sync.emulators.salesforce.soql import And, Comparison, InList, Not, Or, SoqlSyntaxError, parse

VERSION = "v62.0"


@pytest.fixture(scope="module")
def org() -> SalesforceOrg:
    """A small org whose users differ in every field the property test filters on, nulls included."""
    org = seed_org(SalesforceEmulatorOptions(agents=12), seed=3, clock=EmulatorClock())
    users = org.table("User")
    base = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    for n, user_id in enumerate(users.all_ids()):
        email, first_name = users.rows[user_id]["Email"], users.rows[user_id]["FirstName"]
        users.update(user_id, {
            "IsActive": n % 3 != 0,
            "CreatedDate": base + timedelta(minutes=7 * (n % 5)),
            "Email": None if n % 4 == 0 else email.upper() if n % 2 else email,
            "FirstName": None if n % 5 == 1 else first_name,
        })
    lunch = create(org, SERVICE_PRESENCE_STATUS, {"DeveloperName": "Lunch", "MasterLabel": "Lunch"})
    agents = org.profile_by_name("Contact Center Agent")
    assert agents is not None
    permission_set = org.permission_set_of_profile(agents["Id"])
    create(org, SETUP_ENTITY_ACCESS, {"ParentId": permission_set, "SetupEntityId": lunch.id})
    return org


def ids(org: SalesforceOrg, soql: str) -> list[str]:
    total, rows = run_query(org, soql, VERSION)
    assert total == len(rows)
    return [r["Id"] for r in rows]


def error(org: SalesforceOrg, soql: str) -> SalesforceApiError:
    with pytest.raises(SalesforceApiError) as caught:
        run_query(org, soql, VERSION)
    assert caught.value.status == 400
    return caught.value


# -- parsing -----------------------------------------------------------------------------------------


def test_parse_builds_the_query_tree() -> None:
    query = parse(
        "select Id, ServicePresenceStatus.DeveloperName from UserServicePresence "
        "where (StatusStartDate > 2026-11-25T10:00:00.000Z or StatusEndDate >= 2026-11-25T10:00:00Z) "
        "and not UserId in ('005a', '005b') and IsCurrentState != false "
        "order by StatusStartDate desc nulls first, Id limit 10"
    )
    assert [f.parts for f in query.fields or ()] == [("Id",), ("ServicePresenceStatus", "DeveloperName")]
    assert query.object_name == "UserServicePresence" and query.limit == 10
    assert isinstance(query.where, And) and len(query.where.items) == 3
    first, second, third = query.where.items
    assert isinstance(first, Or) and isinstance(second, Not) and isinstance(second.inner, InList)
    assert isinstance(third, Comparison) and third.op == "!=" and third.value.value is False
    assert [(o.field.text, o.descending, o.nulls_first) for o in query.order_by] == [
        ("StatusStartDate", True, True), ("Id", False, True)]


def test_literals() -> None:
    query = parse("SELECT Id FROM User WHERE Name IN ('O\\'Brien', 'a\\\\b', null) OR StatusDuration <> -1.5 "
                  "OR CreatedDate < 2026-11-25T11:00:00+01:00 OR IsActive = TRUE")
    assert isinstance(query.where, Or)
    names, number, moment, flag = query.where.items
    assert isinstance(names, InList) and [v.value for v in names.values] == ["O'Brien", "a\\b", None]
    assert isinstance(number, Comparison) and number.op == "!=" and number.value.value == -1.5
    assert isinstance(moment, Comparison) and moment.value.value == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert isinstance(flag, Comparison) and flag.value.value is True


@pytest.mark.parametrize(
    ("soql", "message", "column"),
    [
        ("SELECT Id FROM User WHERE", "unexpected token: <EOF>", 26),
        ("SELECT Id FROM User WHERE IsActive = true AND Name = 'a' OR Name = 'b'", "unexpected token: 'OR'", 58),
        ("SELECT Id User", "unexpected token: 'User'", 11),
        ("SELECT Id FROM User LIMIT x", "unexpected token: 'x'", 27),
        ("SELECT Id FROM User WHERE Name = 'open", "a string literal is not closed", 34),
        ("SELECT Id FROM User WHERE Name = 'a\\qb'", "Illegal character sequence '\\q'", 34),
        ("SELECT Id FROM User WHERE Name # 'a'", "unexpected token: '#'", 32),
        ("SELECT Id FROM User WHERE Name NOT 'a'", "unexpected token: ''a''", 36),
        ("SELECT FROM User", "unexpected token: 'FROM'", 8),
    ],
)
def test_syntax_errors_point_at_the_culprit(soql: str, message: str, column: int) -> None:
    with pytest.raises(SoqlSyntaxError) as caught:
        parse(soql)
    assert message in caught.value.message
    assert caught.value.position.column == column


def test_malformed_query_message_has_salesforces_layout(org: SalesforceOrg) -> None:
    failure = error(org, "SELECT Id FROM User WHERE")
    assert failure.error_code == "MALFORMED_QUERY"
    caret = " " * 25 + "^"
    assert failure.message == f"SELECT Id FROM User WHERE\n{caret}\nERROR at Row:1:Column:26\nunexpected token: <EOF>"
    assert error(org, "  ").message == "A query string has to be specified"


# -- binding errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("soql", "code", "reason"),
    [
        ("SELECT Id FROM Account", "INVALID_TYPE", "sObject type 'Account' is not supported."),
        ("SELECT Id FROM Presence_Sync_Command__e", "INVALID_TYPE",
         "sObject type 'Presence_Sync_Command__e' is not supported."),
        ("SELECT Id, Nme FROM User", "INVALID_FIELD", "No such column 'Nme' on entity 'User'."),
        ("SELECT Id, Profil.Name FROM User", "INVALID_FIELD", "Didn't understand relationship 'Profil' in field path."),
        ("SELECT Id, Profile FROM User", "INVALID_FIELD", "No such column 'Profile' on entity 'User'."),
        ("SELECT Id, Profile.Nope FROM User", "INVALID_FIELD", "No such column 'Nope' on entity 'Profile'."),
        ("SELECT Id, id FROM User", "INVALID_FIELD", "duplicate field selected: Id"),
        ("SELECT Id FROM User ORDER BY Nope", "INVALID_FIELD", "No such column 'Nope' on entity 'User'."),
        ("SELECT Id FROM User WHERE IsActive = 'true'", "INVALID_FIELD",
         "value of filter criterion for field 'IsActive' must be of type boolean and should not be enclosed in quotes"),
        ("SELECT Id FROM User WHERE Name = 5", "INVALID_FIELD",
         "value of filter criterion for field 'Name' must be of type string and should be enclosed in quotes"),
        ("SELECT Id FROM User WHERE CreatedDate > '2026-11-25T10:00:00Z'", "INVALID_FIELD",
         "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in "
         "quotes"),
        ("SELECT Id FROM User WHERE CreatedDate > 2026-11-25", "INVALID_FIELD",
         "value of filter criterion for field 'CreatedDate' must be of type dateTime"),
        ("SELECT Id FROM User WHERE ProfileId = 42", "INVALID_FIELD",
         "value of filter criterion for field 'ProfileId' must be of type id and should be enclosed in quotes"),
        ("SELECT Id FROM User WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: abc"),
    ],
)
def test_binding_errors_carry_salesforces_codes_and_words(
    org: SalesforceOrg, soql: str, code: str, reason: str
) -> None:
    failure = error(org, soql)
    assert failure.error_code == code
    assert reason in failure.message
    assert "ERROR at Row:1:Column:" in failure.message


# -- evaluation --------------------------------------------------------------------------------------


def test_text_compares_case_insensitively_and_ids_in_either_form(org: SalesforceOrg) -> None:
    [agent] = ids(org, "SELECT Id FROM User WHERE Username = 'AGENT3@EXAMPLE.COM'")
    assert ids(org, f"SELECT Id FROM User WHERE Id = '{agent[:15]}'") == [agent]
    assert ids(org, f"SELECT Id FROM User WHERE Id IN ('{agent.lower()[:15]}', '{agent}')") == [agent]


def test_relationship_fields_come_nested_and_filter(org: SalesforceOrg) -> None:
    soql = "SELECT Username, Profile.Name FROM User WHERE Profile.Name = 'System Administrator'"
    total, rows = run_query(org, soql, VERSION)
    assert total == 1
    [row] = rows
    assert row["Username"] == "integration@example.com"
    assert row["Profile"]["Name"] == "System Administrator"
    profile = org.profile_by_name("System Administrator")
    assert profile is not None
    url = f"/services/data/{VERSION}/sobjects/Profile/{profile['Id']}"
    assert row["Profile"]["attributes"] == {"type": "Profile", "url": url}


def test_relationships_nest_two_levels_deep(org: SalesforceOrg) -> None:
    soql = "SELECT SetupEntityType, Parent.Name, Parent.Profile.Name FROM SetupEntityAccess"
    _, [row] = run_query(org, soql, VERSION)
    assert row["SetupEntityType"] == "ServicePresenceStatus"
    assert row["Parent"]["Name"].startswith("X00e")
    assert row["Parent"]["Profile"]["Name"] == "Contact Center Agent"
    assert row["Parent"]["Profile"]["attributes"]["type"] == "Profile"


def test_a_null_reference_comes_back_as_null(org: SalesforceOrg) -> None:
    users = org.table("User")
    orphan = users.all_ids()[-1]
    users.update(orphan, {"ProfileId": None})
    try:
        _, [row] = run_query(org, f"SELECT Id, Profile.Name, Profile.Id FROM User WHERE Id = '{orphan}'", VERSION)
    finally:
        users.update(orphan, {"ProfileId": org.profile_by_name("Contact Center Agent")["Id"]})  # type: ignore[index]
    assert row["Profile"] is None


def test_count_limit_and_order(org: SalesforceOrg) -> None:
    total, rows = run_query(org, "SELECT COUNT() FROM User WHERE IsActive = true", VERSION)
    assert rows == [] and total == sum(1 for u in org.table("User").rows.values() if u["IsActive"])
    newest_first = ids(org, "SELECT Id FROM User ORDER BY CreatedDate DESC, Username LIMIT 3")
    users = sorted(org.table("User").rows.values(), key=lambda u: u["Username"])
    users.sort(key=lambda u: u["CreatedDate"], reverse=True)
    assert newest_first == [u["Id"] for u in users[:3]]


def test_nulls_sort_first_ascending_and_last_descending_unless_told(org: SalesforceOrg) -> None:
    def emails(soql: str) -> list[Any]:
        return [r["Email"] for r in run_query(org, soql, VERSION)[1]]

    assert emails("SELECT Email FROM User ORDER BY Email")[0] is None
    assert emails("SELECT Email FROM User ORDER BY Email DESC")[-1] is None
    assert emails("SELECT Email FROM User ORDER BY Email NULLS LAST")[-1] is None
    assert emails("SELECT Email FROM User ORDER BY Email DESC NULLS FIRST")[0] is None


def test_not_equal_and_not_in_match_nulls(org: SalesforceOrg) -> None:
    users = org.table("User").rows.values()
    without_email = {u["Id"] for u in users if u["Email"] is None}
    assert without_email
    assert without_email <= set(ids(org, "SELECT Id FROM User WHERE Email != 'x@example.com'"))
    assert without_email <= set(ids(org, "SELECT Id FROM User WHERE Email NOT IN ('x@example.com')"))
    assert set(ids(org, "SELECT Id FROM User WHERE Email = null")) == without_email


def test_datetimes_come_back_in_salesforce_format(org: SalesforceOrg) -> None:
    _, rows = run_query(org, "SELECT CreatedDate FROM User ORDER BY CreatedDate LIMIT 1", VERSION)
    assert rows[0]["CreatedDate"] == "2026-11-25T10:00:00.000+0000"


# -- property: the evaluator agrees with a plain reference filter ------------------------------------

FIELDS: dict[str, str] = {"Username": "string", "Email": "string", "FirstName": "string", "LastName": "string",
                          "IsActive": "boolean", "CreatedDate": "datetime", "ProfileId": "reference", "Id": "id"}


@dataclass(frozen=True)
class Cond:
    """A condition both rendered to SOQL and evaluated by the reference filter."""

    kind: str  # cmp | in | not | and | or
    field: str = ""
    op: str = ""
    values: tuple[Any, ...] = ()
    items: tuple[Cond, ...] = ()

    def soql(self) -> str:
        match self.kind:
            case "cmp":
                return f"{self.field} {self.op} {render(self.values[0])}"
            case "in" | "notin":
                word = "IN" if self.kind == "in" else "NOT IN"
                return f"{self.field} {word} ({', '.join(render(v) for v in self.values)})"
            case "not":
                return f"NOT ({self.items[0].soql()})"
        joiner = " AND " if self.kind == "and" else " OR "
        return "(" + joiner.join(i.soql() for i in self.items) + ")"

    def holds(self, record: dict[str, Any]) -> bool:
        match self.kind:
            case "cmp":
                return reference_compare(self.op, key(record[self.field]), key(self.values[0]))
            case "in":
                return key(record[self.field]) in {key(v) for v in self.values}
            case "notin":
                return key(record[self.field]) not in {key(v) for v in self.values}
            case "not":
                return not self.items[0].holds(record)
            case "and":
                return all(i.holds(record) for i in self.items)
        return any(i.holds(record) for i in self.items)


def render(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def key(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def reference_compare(op: str, value: Any, literal: Any) -> bool:
    if literal is None:
        return {"=": value is None, "!=": value is not None}.get(op, False)
    if value is None:
        return op == "!="
    return {"=": value == literal, "!=": value != literal, "<": value < literal, ">": value > literal,
            "<=": value <= literal, ">=": value >= literal}[op]


def values_for(org: SalesforceOrg, field: str) -> st.SearchStrategy[Any]:
    seen = [r[field] for r in org.table("User").rows.values()]
    kind = FIELDS[field]
    if kind == "boolean":
        return st.sampled_from([True, False, None])
    if kind == "datetime":
        return st.sampled_from(seen) | st.just(datetime(2026, 11, 25, 10, 10, tzinfo=UTC))
    if kind in ("id", "reference"):
        return st.sampled_from(seen)
    texts = [v for v in seen if v is not None]
    return st.sampled_from(texts) | st.sampled_from([t.swapcase() for t in texts]) | st.text(
        alphabet="ab'\\ @.", max_size=6) | st.none()


def conditions(org: SalesforceOrg) -> st.SearchStrategy[Cond]:
    def comparison(field: str) -> st.SearchStrategy[Cond]:
        ops = ["=", "!="] if FIELDS[field] in ("boolean", "id", "reference") else ["=", "!=", "<", ">", "<=", ">="]
        single = st.builds(lambda op, v: Cond("cmp", field, op, (v,)), st.sampled_from(ops), values_for(org, field))
        listed = st.builds(lambda negated, vs: Cond("notin" if negated else "in", field, values=tuple(vs)),
                           st.booleans(), st.lists(values_for(org, field), min_size=1, max_size=3))
        return single | listed

    leaf = st.one_of([comparison(field) for field in sorted(FIELDS)])
    return st.recursive(
        leaf,
        lambda inner: st.builds(lambda c: Cond("not", items=(c,)), inner)
        | st.builds(lambda kind, items: Cond(kind, items=tuple(items)), st.sampled_from(["and", "or"]),
                    st.lists(inner, min_size=2, max_size=3)),
        max_leaves=6,
    )


@pytest.fixture(scope="module")
def condition_strategy(org: SalesforceOrg) -> st.SearchStrategy[Cond]:
    return conditions(org)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_where_order_and_limit_agree_with_a_reference_filter(
    org: SalesforceOrg, condition_strategy: st.SearchStrategy[Cond], data: st.DataObject
) -> None:
    condition = data.draw(condition_strategy)
    order_field = data.draw(st.sampled_from(["Username", "Email", "CreatedDate", "IsActive", "FirstName"]))
    descending = data.draw(st.booleans())
    limit = data.draw(st.none() | st.integers(min_value=0, max_value=8))

    soql = f"SELECT Id FROM User WHERE {condition.soql()} ORDER BY {order_field} {'DESC' if descending else 'ASC'}"
    soql += f" LIMIT {limit}" if limit is not None else ""

    records = [r for r in org.table("User").rows.values() if condition.holds(r)]
    # Nulls first ascending, last descending; ties keep creation order (stable sort).
    present = [r for r in records if r[order_field] is not None]
    present.sort(key=lambda r: key(r[order_field]), reverse=descending)
    nulls = [r for r in records if r[order_field] is None]
    expected = present + nulls if descending else nulls + present
    expected_ids = [r["Id"] for r in expected][:limit]

    assert ids(org, soql) == expected_ids, soql
