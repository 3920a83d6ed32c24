"""Column types that behave the same on SQLite and PostgreSQL.

Timestamps use SQLModel's ``UTCDateTime`` (aware in, aware UTC out, naive input refused);
the types here cover what SQLModel does not.
"""

from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import JSON, BigInteger, Dialect, Integer, String, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB

# JSONB on PostgreSQL (indexable, compact); JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")

# A 64-bit surrogate key: BIGSERIAL on PostgreSQL (audit rows outgrow 2**31 over the years);
# SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY, which is 64-bit anyway.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")

E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """A ``StrEnum`` stored as its plain text value (no database enum type to migrate).

    Usage: ``status: WriteStatus = Field(sa_type=EnumText(WriteStatus))``; the column holds
    ``"pending"`` and reads give back ``WriteStatus.PENDING``.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum_type: type[E]) -> None:
        super().__init__()
        self.enum_type = enum_type

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_type(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_type(value)
