"""Many rows through one INSERT (or upsert), each distinct value converted once.

`Connection.execute(stmt, rows)` builds every row's parameters from the compiled statement and sends
every value through its column type's bind processor, a chain of calls per value: at 1,000 agents a
save, two thirds of `SyncState.commit_tick`'s CPU went there and a fifth to the database itself.
`BulkInsert` compiles its statement once per dialect and set of columns, converts each value with the
same bind processors (a value that repeats, like a tick's timestamp, once), and gives the driver's
`executemany` plain rows. The database receives exactly what `Connection.execute` would send it.

On PostgreSQL (psycopg), every row goes in one statement instead, each column as one array parameter
sent in binary (`INSERT ... SELECT * FROM unnest(%(a)b::T[], ...)`): psycopg's pipelined `executemany`
spent ~17 µs of this process's CPU a row, 51-66 ms for a 1,000-agent save; the arrays, 16-21 ms (binary:
text arrays escape every quote of a JSON document in Python, three times slower than row by row). One
statement may not update a row twice, so callers give each key one row.

    upsert_agents = BulkInsert(upsert_statement)
    with transaction(engine, write=True) as conn:
        upsert_agents.execute(conn, rows)          # rows: dicts with the same keys
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Insert

Convert = Callable[[Any], Any]


class BulkInsert:
    """An INSERT statement run for many rows at once (see the module docstring)."""

    def __init__(self, stmt: Insert) -> None:
        self.stmt = stmt
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan | None] = {}

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        keys = tuple(rows[0])
        plan_key = (conn.dialect.name, keys)
        if plan_key not in self._plans:
            self._plans[plan_key] = _Plan.of(self.stmt, conn.dialect, keys)
        plan = self._plans[plan_key]
        if plan is None:  # defaults computed per row by SQLAlchemy: its own way
            conn.execute(self.stmt, list(rows))
            return
        if plan.columnar:
            conn.exec_driver_sql(plan.sql, plan.columns(rows))
            return
        conn.exec_driver_sql(plan.sql, plan.parameters(rows))


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # the parameters in the statement's order (positional) or by name
    processors: tuple[Convert | None, ...]
    positional: bool
    columnar: bool = False  # one execution, each parameter a column's values (PostgreSQL's unnest)

    @classmethod
    def of(cls, stmt: Insert, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        if compiled.insert_prefetch or compiled.postfetch or compiled.literal_execute_params:
            return None
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
        if set(names) != set(keys):
            return None
        processors = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        )
        if dialect.name == "postgresql" and dialect.driver == "psycopg" and not compiled.positional:
            unnest = _unnest(stmt, dialect, compiled.string, names)
            if unnest is not None:
                return cls(unnest, names, processors, positional=False, columnar=True)
        return cls(compiled.string, names, processors, compiled.positional)

    def columns(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """Each parameter as the list of its rows' values, converted as `parameters` converts them."""
        columns: dict[str, list[Any]] = {}
        for name, processor in zip(self.names, self.processors):
            values = [row[name] for row in rows]
            if processor is not None:
                convert = _once_per_value(processor)
                values = [convert(value) for value in values]
            columns[name] = values
        return columns

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        converted = [
            (position, name, _once_per_value(processor))
            for position, (name, processor) in enumerate(zip(self.names, self.processors))
            if processor is not None
        ]
        if self.positional:
            take = itemgetter(*self.names)
            lists = [list(take(row)) if len(self.names) > 1 else [take(row)] for row in rows]
            for values in lists:
                for position, _, convert in converted:
                    values[position] = convert(values[position])
            return [tuple(values) for values in lists]
        dicts = [{name: row[name] for name in self.names} for row in rows]
        for values in dicts:
            for _, name, convert in converted:
                values[name] = convert(values[name])
        return dicts


_VALUES = re.compile(r"VALUES \(((?:%\(\w+\)s(?:::[A-Z][A-Z ]*[A-Z])?(?:, )?)+)\)")
_PARAMETER = re.compile(r"%\((\w+)\)s(?:::([A-Z][A-Z ]*[A-Z]))?")


def _unnest(stmt: Insert, dialect: Dialect, sql: str, names: tuple[str, ...]) -> str | None:
    """PostgreSQL: `INSERT ... VALUES (%(a)s::T, ...)` as `INSERT ... SELECT * FROM unnest(%(a)b::T[], ...)`:
    every row in one statement, each parameter an array psycopg sends in binary (`%b`); None when the
    statement is not of that shape."""
    found = _VALUES.search(sql)
    if found is None:
        return None
    parameters = _PARAMETER.findall(found.group(1))
    if sorted(name for name, _ in parameters) != sorted(names):
        return None
    columns = stmt.table.columns
    arrays = ", ".join(
        f"%({name})b::{sql_type or columns[name].type.compile(dialect=dialect)}[]" for name, sql_type in parameters
    )
    return f"{sql[: found.start()]}SELECT * FROM unnest({arrays}){sql[found.end():]}"


def _once_per_value(processor: Convert) -> Convert:
    """`processor`, remembering what it made of each hashable value for the rows of one statement."""
    made: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return made[value]
        except KeyError:
            result = made[value] = processor(value)
            return result
        except TypeError:  # not hashable (a JSON document)
            return processor(value)

    return convert
