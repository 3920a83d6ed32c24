"""The objects the emulated org serves (apis.md S3/S4), described once for DML, SOQL and indexes.

Names are looked up case-insensitively, as Salesforce does; records use the canonical spelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal["id", "reference", "string", "boolean", "datetime", "double"]

# The SOQL type names used in Salesforce's error messages.
SOQL_TYPE_NAMES: dict[FieldType, str] = {
    "id": "id",
    "reference": "id",
    "string": "string",
    "boolean": "boolean",
    "datetime": "dateTime",
    "double": "double",
}


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: FieldType
    label: str
    createable: bool = False
    updateable: bool = False
    required: bool = False
    reference_to: str | None = None
    relationship: str | None = None
    max_length: int | None = None
    indexed: bool = False
    """Hash index: `=` and `IN` without a scan."""
    ranged: bool = False
    """Sorted index: `<`, `<=`, `>`, `>=` without a scan."""


@dataclass(frozen=True)
class ObjectSchema:
    name: str
    label: str
    key_prefix: str
    fields: tuple[FieldDef, ...]
    setup: bool
    """Setup objects may not share a DML call with other objects (MIXED_DML_OPERATION)."""
    createable: bool = False
    updateable: bool = False
    deletable: bool = False
    queryable: bool = True
    is_event: bool = False
    _by_name: dict[str, FieldDef] = field(init=False, repr=False, compare=False)
    _by_relationship: dict[str, FieldDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name.lower(): f for f in self.fields})
        object.__setattr__(
            self, "_by_relationship", {f.relationship.lower(): f for f in self.fields if f.relationship}
        )

    def field(self, name: str) -> FieldDef | None:
        return self._by_name.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        return self._by_relationship.get(name.lower())


ID = FieldDef("Id", "id", "Record ID")  # found through the table itself, not an index
_AUDIT = (
    FieldDef("CreatedDate", "datetime", "Created Date", ranged=True),
    FieldDef("LastModifiedDate", "datetime", "Last Modified Date", ranged=True),
    FieldDef("SystemModstamp", "datetime", "System Modstamp", ranged=True),
)


def _ref(name: str, label: str, to: str, relationship: str | None, *, createable: bool = False) -> FieldDef:
    return FieldDef(
        name, "reference", label, createable=createable, required=createable, reference_to=to,
        relationship=relationship, indexed=True,
    )


USER = ObjectSchema(
    "User", "User", "005",
    (
        ID,
        FieldDef("Username", "string", "Username", indexed=True),
        FieldDef("Email", "string", "Email", indexed=True),
        FieldDef("Name", "string", "Full Name", indexed=True),
        FieldDef("FirstName", "string", "First Name"),
        FieldDef("LastName", "string", "Last Name"),
        _ref("ProfileId", "Profile ID", "Profile", "Profile"),
        FieldDef("IsActive", "boolean", "Active", indexed=True),
        *_AUDIT,
    ),
    setup=True,
)
PROFILE = ObjectSchema(
    "Profile", "Profile", "00e", (ID, FieldDef("Name", "string", "Name", indexed=True), *_AUDIT), setup=True
)
PERMISSION_SET = ObjectSchema(
    "PermissionSet", "Permission Set", "0PS",
    (
        ID,
        FieldDef("Name", "string", "Name", indexed=True),
        FieldDef("Label", "string", "Label"),
        FieldDef("IsOwnedByProfile", "boolean", "Is Owned By Profile", indexed=True),
        _ref("ProfileId", "Profile ID", "Profile", "Profile"),
        *_AUDIT,
    ),
    setup=True,
)
SERVICE_CHANNEL = ObjectSchema(
    "ServiceChannel", "Service Channel", "0N9",
    (
        ID,
        FieldDef("DeveloperName", "string", "Developer Name", indexed=True),
        FieldDef("MasterLabel", "string", "Label"),
        FieldDef("RelatedEntity", "string", "Related Entity"),
        *_AUDIT,
    ),
    setup=True,
)
SERVICE_PRESENCE_STATUS = ObjectSchema(
    "ServicePresenceStatus", "Presence Status", "0N5",
    (
        ID,
        FieldDef("DeveloperName", "string", "Developer Name", createable=True, updateable=True, required=True,
                 max_length=80, indexed=True),
        FieldDef("MasterLabel", "string", "Label", createable=True, updateable=True, required=True, max_length=80),
        *_AUDIT,
    ),
    setup=True, createable=True, updateable=True, deletable=True,
)
# [assumed] key prefix: Salesforce does not document ServiceChannelStatus's prefix.
SERVICE_CHANNEL_STATUS = ObjectSchema(
    "ServiceChannelStatus", "Service Channel Status", "0N4",
    (
        ID,
        _ref("ServicePresenceStatusId", "Presence Status ID", "ServicePresenceStatus", "ServicePresenceStatus",
             createable=True),
        _ref("ServiceChannelId", "Service Channel ID", "ServiceChannel", "ServiceChannel", createable=True),
        *_AUDIT,
    ),
    setup=True, createable=True, deletable=True,
)
SETUP_ENTITY_ACCESS = ObjectSchema(
    "SetupEntityAccess", "Setup Entity Access", "0J0",
    (
        ID,
        _ref("ParentId", "Parent ID", "PermissionSet", "Parent", createable=True),
        _ref("SetupEntityId", "Setup Entity ID", "ServicePresenceStatus", None, createable=True),
        FieldDef("SetupEntityType", "string", "Setup Entity Type", indexed=True),
        *_AUDIT,
    ),
    setup=True, createable=True, deletable=True,
)
USER_SERVICE_PRESENCE = ObjectSchema(
    "UserServicePresence", "User Service Presence", "0Hn",
    (
        ID,
        _ref("UserId", "User ID", "User", "User"),
        _ref("ServicePresenceStatusId", "Presence Status ID", "ServicePresenceStatus", "ServicePresenceStatus"),
        FieldDef("StatusStartDate", "datetime", "Status Start Date", ranged=True),
        FieldDef("StatusEndDate", "datetime", "Status End Date", ranged=True),
        FieldDef("IsCurrentState", "boolean", "Is Current State", indexed=True),
        FieldDef("IsAway", "boolean", "Is Away"),
        FieldDef("StatusDuration", "double", "Status Duration"),
        *_AUDIT,
    ),
    setup=False, deletable=True,
)
# [our design] apis.md S4: the command the presence applier listens to.
PRESENCE_SYNC_COMMAND = ObjectSchema(
    "Presence_Sync_Command__e", "Presence Sync Command", "e00",
    (
        FieldDef("UserId__c", "string", "User Id", createable=True, required=True, max_length=18),
        FieldDef("StatusId__c", "string", "Status Id", createable=True, required=True, max_length=18),
        FieldDef("CommandId__c", "string", "Command Id", createable=True, max_length=64),
        FieldDef("Reason__c", "string", "Reason", createable=True, max_length=255),
    ),
    setup=False, createable=True, queryable=False, is_event=True,
)

SCHEMAS: dict[str, ObjectSchema] = {
    s.name.lower(): s
    for s in (
        USER, PROFILE, PERMISSION_SET, SERVICE_CHANNEL, SERVICE_PRESENCE_STATUS, SERVICE_CHANNEL_STATUS,
        SETUP_ENTITY_ACCESS, USER_SERVICE_PRESENCE, PRESENCE_SYNC_COMMAND,
    )
}
STORED_SCHEMAS = tuple(s for s in SCHEMAS.values() if not s.is_event)


def schema_for(name: str) -> ObjectSchema | None:
    return SCHEMAS.get(name.lower())
