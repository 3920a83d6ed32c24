"""SOQL meaning: bind a parsed query to the schemas, plan it on indexes, evaluate it, shape the rows.

Comparisons follow SOQL: text compares case-insensitively, ids in either 15- or 18-character form,
`!=` and `NOT IN` also match nulls, ordering puts nulls first ascending and last descending unless
`NULLS FIRST|LAST` says otherwise. Errors carry Salesforce's codes and its message layout (the query
line, a caret under the culprit, `ERROR at Row:r:Column:c`, the reason).

    total, rows = run_query(org, "SELECT Id, Profile.Name FROM User WHERE IsActive = true", "v62.0")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, overload

from presence_sync.emulators.salesforce.errors import SalesforceApiError
from presence_sync.emulators.salesforce.ids import normalize_id
from presence_sync.emulators.salesforce.org import SalesforceOrg
from presence_sync.emulators.salesforce.schema import SOQL_TYPE_NAMES, FieldDef, ObjectSchema, schema_for
from presence_sync.emulators.salesforce.soql import (
    And,
    Comparison,
    Condition,
    FieldPath,
    InList,
    Not,
    Op,
    Or,
    Position,
    SoqlSyntaxError,
    Value,
    parse,
)
from presence_sync.emulators.salesforce.store import Record, Table, index_key


@dataclass(frozen=True)
class BoundPath:
    steps: tuple[FieldDef, ...]
    """The reference fields followed, then the field itself."""
    names: tuple[str, ...]
    """Canonical spelling: relationship names, then the field name."""

    @property
    def field(self) -> FieldDef:
        return self.steps[-1]

    @property
    def text(self) -> str:
        return ".".join(self.names)

    def tail(self) -> BoundPath:
        return BoundPath(self.steps[1:], self.names[1:])


@dataclass(frozen=True)
class BoundCompare:
    path: BoundPath
    op: Op
    key: Any


@dataclass(frozen=True)
class BoundIn:
    path: BoundPath
    keys: frozenset[Any]
    negated: bool


@dataclass(frozen=True)
class BoundNot:
    inner: BoundCondition


@dataclass(frozen=True)
class BoundAnd:
    items: tuple[BoundCondition, ...]


@dataclass(frozen=True)
class BoundOr:
    items: tuple[BoundCondition, ...]


BoundCondition = BoundCompare | BoundIn | BoundNot | BoundAnd | BoundOr


@dataclass(frozen=True)
class BoundOrder:
    path: BoundPath
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class BoundQuery:
    schema: ObjectSchema
    select: tuple[BoundPath, ...] | None
    """None for `SELECT COUNT()`."""
    where: BoundCondition | None
    order: tuple[BoundOrder, ...]
    limit: int | None


# -- binding ----------------------------------------------------------------------------------------


class _Binder:
    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, code: str, message: str, position: Position) -> SalesforceApiError:
        lines = self.text.split("\n")
        line = lines[position.row - 1] if position.row - 1 < len(lines) else ""
        caret = " " * (position.column - 1) + "^"
        return SalesforceApiError(
            400, code, f"{line}\n{caret}\nERROR at Row:{position.row}:Column:{position.column}\n{message}"
        )

    def bind(self) -> BoundQuery:
        try:
            query = parse(self.text)
        except SoqlSyntaxError as exc:
            raise self.error("MALFORMED_QUERY", exc.message, exc.position) from exc
        schema = schema_for(query.object_name)
        if schema is None or not schema.queryable:
            raise self.error(
                "INVALID_TYPE",
                f"sObject type '{query.object_name}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL or the "
                "describe call for the appropriate names.",
                query.object_position,
            )
        select = None
        if query.fields is not None:
            bound = [self.path(schema, f) for f in query.fields]
            seen: set[str] = set()
            for path, source in zip(bound, query.fields, strict=True):
                if path.text.lower() in seen:
                    raise self.error("INVALID_FIELD", f"duplicate field selected: {path.text}", source.position)
                seen.add(path.text.lower())
            select = tuple(bound)
        where = self.condition(schema, query.where) if query.where is not None else None
        order = tuple(BoundOrder(self.path(schema, o.field), o.descending, o.nulls_first) for o in query.order_by)
        return BoundQuery(schema, select, where, order, query.limit)

    def path(self, schema: ObjectSchema, path: FieldPath) -> BoundPath:
        parts = list(path.parts)
        # `SELECT User.Username FROM User` names the queried object itself.
        if len(parts) > 1 and parts[0].lower() == schema.name.lower() and schema.relationship(parts[0]) is None:
            parts = parts[1:]
        steps: list[FieldDef] = []
        names: list[str] = []
        current = schema
        for relationship_name in parts[:-1]:
            reference = current.relationship(relationship_name)
            if reference is None or reference.reference_to is None:
                raise self.error(
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{relationship_name}' in field path. If you are attempting "
                    "to use a custom relationship, be sure to append the '__r' after the custom relationship "
                    "name. Please reference your WSDL or the describe call for the appropriate names.",
                    path.position,
                )
            steps.append(reference)
            names.append(reference.relationship or relationship_name)
            target = schema_for(reference.reference_to)
            assert target is not None
            current = target
        field = current.field(parts[-1])
        if field is None:
            raise self.error(
                "INVALID_FIELD",
                f"No such column '{parts[-1]}' on entity '{current.name}'. If you are attempting to use a custom "
                "field, be sure to append the '__c' after the custom field name. Please reference your WSDL or "
                "the describe call for the appropriate names.",
                path.position,
            )
        steps.append(field)
        names.append(field.name)
        return BoundPath(tuple(steps), tuple(names))

    def condition(self, schema: ObjectSchema, condition: Condition) -> BoundCondition:
        match condition:
            case Comparison(field=field, op=op, value=value):
                path = self.path(schema, field)
                return BoundCompare(path, op, self.literal(path, value))
            case InList(field=field, values=values, negated=negated):
                path = self.path(schema, field)
                return BoundIn(path, frozenset(self.literal(path, v) for v in values), negated)
            case Not(inner=inner):
                return BoundNot(self.condition(schema, inner))
            case And(items=items):
                return BoundAnd(tuple(self.condition(schema, i) for i in items))
            case Or(items=items):
                return BoundOr(tuple(self.condition(schema, i) for i in items))
        raise AssertionError(condition)

    def literal(self, path: BoundPath, value: Value) -> Any:
        """The comparison key of a literal, checked against the field's type."""
        if value.kind == "null":
            return None
        field = path.field
        expected = {"string": "string", "id": "string", "reference": "string", "boolean": "boolean",
                    "datetime": "datetime", "double": "number"}[field.type]
        if value.kind != expected:
            quoting = "should be enclosed in quotes" if expected == "string" else "should not be enclosed in quotes"
            raise self.error(
                "INVALID_FIELD",
                f"value of filter criterion for field '{path.text}' must be of type "
                f"{SOQL_TYPE_NAMES[field.type]} and {quoting}",
                value.position,
            )
        if field.type in ("id", "reference"):
            normalized = normalize_id(str(value.value))
            if normalized is None:
                raise self.error("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value.value}", value.position)
            return normalized
        return index_key(field, value.value)


def compile_query(text: str) -> BoundQuery:
    """Parse and bind; raises `SalesforceApiError` (400 MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE...)."""
    if not text.strip():
        raise SalesforceApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    return _Binder(text).bind()


# -- evaluation -------------------------------------------------------------------------------------


def _value(org: SalesforceOrg, record: Record | None, path: BoundPath) -> Any:
    for step in path.steps[:-1]:
        if record is None or record.get(step.name) is None:
            return None
        assert step.reference_to is not None
        record = org.get(step.reference_to, record[step.name])
    return None if record is None else record.get(path.field.name)


def _compare(op: Op, value: Any, key: Any) -> bool:
    if key is None:
        return (value is None) if op == "=" else (value is not None) if op == "!=" else False
    if value is None:
        return op == "!="
    match op:
        case "=":
            return bool(value == key)
        case "!=":
            return bool(value != key)
        case "<":
            return bool(value < key)
        case ">":
            return bool(value > key)
        case "<=":
            return bool(value <= key)
        case ">=":
            return bool(value >= key)
    raise AssertionError(op)


def _matches(org: SalesforceOrg, record: Record, condition: BoundCondition) -> bool:
    match condition:
        case BoundCompare(path=path, op=op, key=key):
            return _compare(op, index_key(path.field, _value(org, record, path)), key)
        case BoundIn(path=path, keys=keys, negated=negated):
            return (index_key(path.field, _value(org, record, path)) in keys) != negated
        case BoundNot(inner=inner):
            return not _matches(org, record, inner)
        case BoundAnd(items=items):
            return all(_matches(org, record, i) for i in items)
        case BoundOr(items=items):
            return any(_matches(org, record, i) for i in items)
    raise AssertionError(condition)


_RANGE_BOUNDS: dict[str, tuple[bool, bool]] = {">": (True, False), ">=": (True, True), "<": (False, False),
                                               "<=": (False, True)}


def _candidates(table: Table, condition: BoundCondition) -> set[str] | list[str] | None:
    """Ids that may match, found through indexes; None when only a scan can tell."""
    match condition:
        case BoundCompare(path=path, op=op, key=key) if len(path.steps) == 1:
            field = path.field
            if op == "=" and field.name == "Id":
                return {key} if key in table.rows else set()
            if op == "=" and field.indexed:
                return table.lookup(field.name, key)
            if field.ranged and key is not None:
                if op == "=":
                    return table.range(field.name, key, True, key, True)
                if op in _RANGE_BOUNDS:
                    is_low, inclusive = _RANGE_BOUNDS[op]
                    if is_low:
                        return table.range(field.name, low=key, low_inclusive=inclusive)
                    return table.range(field.name, high=key, high_inclusive=inclusive)
            return None
        case BoundIn(path=path, keys=keys, negated=False) if len(path.steps) == 1 and (
            path.field.indexed or path.field.name == "Id"
        ):
            if path.field.name == "Id":
                return {k for k in keys if k in table.rows}
            found: set[str] = set()
            for key in keys:
                found |= table.lookup(path.field.name, key)
            return found
        case BoundAnd(items=items):
            options = [c for c in (_candidates(table, i) for i in items) if c is not None]
            return min(options, key=len) if options else None
        case BoundOr(items=items):
            union: set[str] = set()
            for item in items:
                found_item = _candidates(table, item)
                if found_item is None:
                    return None
                union.update(found_item)
            return union
    return None


def execute(org: SalesforceOrg, query: BoundQuery) -> list[Record]:
    """The matching records, ordered and limited."""
    table = org.table(query.schema.name)
    if query.where is None:
        records = list(table.rows.values())
    else:
        candidates = _candidates(table, query.where)
        ids = table.all_ids() if candidates is None else table.in_insertion_order(set(candidates))
        records = [r for r in (table.rows[i] for i in ids) if _matches(org, r, query.where)]
    for order in reversed(query.order):  # stable sorts, last key first
        null_low = order.nulls_first != order.descending

        def sort_key(record: Record, order: BoundOrder = order, null_low: bool = null_low) -> tuple[Any, ...]:
            value = index_key(order.path.field, _value(org, record, order.path))
            return ((0,) if null_low else (2,)) if value is None else (1, value)

        records.sort(key=sort_key, reverse=order.descending)
    return records if query.limit is None else records[: query.limit]


# -- rows as the REST API returns them --------------------------------------------------------------


def json_value(value: Any) -> Any:
    """Salesforce's JSON: datetimes as `2026-11-25T10:00:00.000+0000`."""
    if isinstance(value, datetime):
        # isoformat truncates to the millisecond as Salesforce does, in a fifth of strftime's time.
        return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "+0000"
    return value


def attributes(schema_name: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": schema_name, "url": f"/services/data/{version}/sobjects/{schema_name}/{record_id}"}


def _place(org: SalesforceOrg, out: dict[str, Any], record: Record, path: BoundPath, version: str) -> None:
    if len(path.steps) == 1:
        out[path.names[0]] = json_value(record.get(path.field.name))
        return
    reference, name = path.steps[0], path.names[0]
    if name not in out:
        target_id = record.get(reference.name)
        assert reference.reference_to is not None
        target = org.get(reference.reference_to, target_id) if target_id else None
        out[name] = None if target is None else {"attributes": attributes(reference.reference_to, target_id, version)}
    nested = out[name]
    if nested is not None:
        assert reference.reference_to is not None
        target = org.get(reference.reference_to, record[reference.name])
        assert target is not None
        _place(org, nested, target, path.tail(), version)


def shape(org: SalesforceOrg, schema: ObjectSchema, record: Record, paths: tuple[BoundPath, ...],
          version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": attributes(schema.name, record["Id"], version)}
    for path in paths:
        if len(path.steps) == 1:  # the record's own field: most of them, placed here without a call
            value = record.get(path.steps[0].name)
            out[path.names[0]] = json_value(value) if isinstance(value, datetime) else value
        else:
            _place(org, out, record, path, version)
    return out


class QueryRows(Sequence[dict[str, Any]]):
    """A query's rows, each shaped when it is served: the first page of a 30,000-row answer shapes
    2,000 rows, not all of them, so one big query does not hold every other request for the
    emulator's lock meanwhile. The matching records' own fields are copied when the query runs (later
    pages show them as they were then); related records (`Status.DeveloperName`) are read when the
    page is served."""

    def __init__(self, org: SalesforceOrg, query: BoundQuery, records: list[Record], version: str) -> None:
        assert query.select is not None
        self._org, self._schema, self._paths, self._version = org, query.schema, query.select, version
        self._records = [dict(record) for record in records]

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._shape(record) for record in self._records[index]]
        return self._shape(self._records[index])

    def _shape(self, record: Record) -> dict[str, Any]:
        return shape(self._org, self._schema, record, self._paths, self._version)


def run_query(org: SalesforceOrg, text: str, version: str) -> tuple[int, Sequence[dict[str, Any]]]:
    """(totalSize, rows) of one SOQL query, each row shaped when read (`QueryRows`); COUNT() gives the
    count and no rows."""
    query = compile_query(text)
    records = execute(org, query)
    if query.select is None:
        return len(records), []
    return len(records), QueryRows(org, query, records, version)
