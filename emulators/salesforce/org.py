"""The emulated org: its object tables, settings, connected app and the people who can log in.

`SalesforceOrg` knows records and the relations between them (who has which profile, which statuses a
profile may use, which statuses are Online); it does no validation of API input (see `dml.py`) and no
presence bookkeeping (see `presence.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from presence_sync.emulators.faults import EmulatorClock
from presence_sync.emulators.salesforce.errors import ControlError, DuplicateNameError, UnknownProfileError
from presence_sync.emulators.salesforce.ids import IdFactory, normalize_id
from presence_sync.emulators.salesforce.schema import (
    PERMISSION_SET,
    PROFILE,
    SERVICE_CHANNEL,
    STORED_SCHEMAS,
    USER,
    ObjectSchema,
)
from presence_sync.emulators.salesforce.store import Record, Table


@dataclass
class OrgSettings:
    """What `PUT /__emulator/org` changes."""

    block_username_password_flow: bool
    api_daily_limit: int
    mfa_users: set[str]
    """Lower-cased usernames with MFA enforced (the password flow fails for them)."""
    connected_app_creation_enabled: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "block_username_password_flow": self.block_username_password_flow,
            "api_daily_limit": self.api_daily_limit,
            "mfa_users": sorted(self.mfa_users),
            "connected_app_creation_enabled": self.connected_app_creation_enabled,
        }


@dataclass
class ConnectedApp:
    """The seeded app: consumer key/secret, the JWT certificate's key pair, its Run-As user."""

    client_id: str
    client_secret: str = field(repr=False)
    jwt_private_key_pem: str = field(repr=False)
    jwt_public_key_pem: str
    run_as_user_id: str
    preapproved_profile_ids: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Login:
    password: str = field(repr=False)
    security_token: str = field(repr=False)


class SalesforceOrg:
    def __init__(self, org_id: str, ids: IdFactory, clock: EmulatorClock, settings: OrgSettings) -> None:
        self.org_id = org_id
        self.ids = ids
        self.clock = clock
        self.settings = settings
        self.tables: dict[str, Table] = {s.name: Table(s) for s in STORED_SCHEMAS}
        self.logins: dict[str, Login] = {}
        self.connected_app: ConnectedApp | None = None

    # -- records ------------------------------------------------------------------------------------

    def table(self, object_name: str) -> Table:
        return self.tables[object_name]

    def get(self, object_name: str, record_id: str) -> Record | None:
        return self.tables[object_name].get(record_id)

    def insert(self, schema: ObjectSchema, values: Record, now: datetime | None = None) -> Record:
        """Store a new record: a fresh Id, every field present (null when unset), audit dates."""
        now = now or self.clock.now()
        record: Record = {f.name: None for f in schema.fields}
        record.update(values)
        record["Id"] = self.ids.next(schema.key_prefix)
        for audit in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            if audit in record:
                record[audit] = now
        self.tables[schema.name].insert(record)
        return record

    def update(self, schema: ObjectSchema, record_id: str, changes: Record, now: datetime | None = None) -> Record:
        now = now or self.clock.now()
        stamped = dict(changes)
        if schema.field("LastModifiedDate"):
            stamped.update(LastModifiedDate=now, SystemModstamp=now)
        return self.tables[schema.name].update(record_id, stamped)

    def delete(self, schema: ObjectSchema, record_id: str) -> None:
        """Delete a record and what only exists through it (a status's channel links and access rows)."""
        if schema.name == "ServicePresenceStatus":
            for dependent, reference in (("ServiceChannelStatus", "ServicePresenceStatusId"),
                                         ("SetupEntityAccess", "SetupEntityId")):
                table = self.tables[dependent]
                for dependent_id in list(table.lookup(reference, record_id)):
                    table.delete(dependent_id)
        self.tables[schema.name].delete(record_id)

    # -- people and access --------------------------------------------------------------------------

    def _by_any_id(self, object_name: str, record_id: str) -> Record | None:
        """A record by its 18- or 15-character id."""
        table = self.tables[object_name]
        record = table.get(record_id)  # the common case: the canonical id
        if record is None and (normalized := normalize_id(record_id)):
            record = table.get(normalized)
        return record

    def user(self, user_id: str) -> Record | None:
        return self._by_any_id("User", user_id)

    def user_by_username(self, username: str) -> Record | None:
        return self.tables["User"].lookup_one("Username", username)

    def profile_by_name(self, name: str) -> Record | None:
        return self.tables["Profile"].lookup_one("Name", name)

    def permission_set_of_profile(self, profile_id: str) -> str | None:
        table = self.tables["PermissionSet"]
        owned = [i for i in table.lookup("ProfileId", profile_id) if table.rows[i]["IsOwnedByProfile"]]
        return owned[0] if owned else None

    def status(self, status_id: str) -> Record | None:
        return self._by_any_id("ServicePresenceStatus", status_id)

    def status_by_developer_name(self, developer_name: str) -> Record | None:
        return self.tables["ServicePresenceStatus"].lookup_one("DeveloperName", developer_name)

    def status_is_online(self, status_id: str) -> bool:
        """Online statuses have at least one channel; Busy (away) statuses have none."""
        return bool(self.tables["ServiceChannelStatus"].lookup("ServicePresenceStatusId", status_id))

    def has_status_access(self, user_id: str, status_id: str) -> bool:
        """Through the user's profile -> its permission set -> a SetupEntityAccess row for the status."""
        user = self.tables["User"].get(user_id)
        if user is None or user["ProfileId"] is None:
            return False
        permission_set_id = self.permission_set_of_profile(user["ProfileId"])
        if permission_set_id is None:
            return False
        access = self.tables["SetupEntityAccess"]
        grants = access.lookup("SetupEntityId", status_id)
        return any(access.rows[g]["ParentId"] == permission_set_id for g in grants)

    # -- what the control API creates ---------------------------------------------------------------

    def create_profile(self, name: str) -> Record:
        """A profile and the permission set it owns (every profile owns exactly one)."""
        name = name.strip()
        if not name:
            raise ControlError("a profile needs a non-empty name")
        if self.profile_by_name(name):
            raise DuplicateNameError(f"a profile named {name!r} already exists")
        profile = self.insert(PROFILE, {"Name": name})
        self.insert(PERMISSION_SET, {
            "Name": f"X{profile['Id'][:15]}", "Label": name, "IsOwnedByProfile": True, "ProfileId": profile["Id"],
        })
        return profile

    def create_user(self, username: str, email: str, name: str, profile_name: str,
                    login: Login | None = None) -> Record:
        if "@" not in username or username.startswith("@") or username.endswith("@"):
            raise ControlError(f"username {username!r} must look like an email address (name@domain)")
        if self.user_by_username(username):
            raise DuplicateNameError(f"a user with username {username!r} already exists")
        profile = self.profile_by_name(profile_name)
        if profile is None:
            known = ", ".join(sorted(r["Name"] for r in self.tables["Profile"].rows.values()))
            raise UnknownProfileError(f"no profile named {profile_name!r}; existing profiles: {known}")
        first, _, last = name.strip().rpartition(" ")
        user = self.insert(USER, {
            "Username": username, "Email": email, "Name": name.strip(), "FirstName": first or None,
            "LastName": last, "ProfileId": profile["Id"], "IsActive": True,
        })
        if login is not None:
            self.logins[user["Id"]] = login
        return user

    def create_channel(self, developer_name: str, label: str, related_entity: str) -> Record:
        if self.tables["ServiceChannel"].lookup_one("DeveloperName", developer_name):
            raise DuplicateNameError(f"a service channel named {developer_name!r} already exists")
        return self.insert(SERVICE_CHANNEL, {
            "DeveloperName": developer_name, "MasterLabel": label, "RelatedEntity": related_entity,
        })
