"""Record writes through the data API, validated the way Salesforce validates them.

Single-record calls raise `SalesforceApiError` (the route answers it as a JSON array); collections
turn the same errors into per-record results. Platform events are "created" like records but never
stored: they come back as `Saved.event`, to be delivered once the call commits.

    saved = create(org, schema_for("ServicePresenceStatus"), {"DeveloperName": "Lunch", "MasterLabel": "Lunch"})
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from presence_sync.emulators.salesforce.errors import RESOURCE_NOT_FOUND, SalesforceApiError, not_found
from presence_sync.emulators.salesforce.ids import normalize_id
from presence_sync.emulators.salesforce.org import SalesforceOrg
from presence_sync.emulators.salesforce.schema import FieldDef, ObjectSchema, schema_for
from presence_sync.emulators.salesforce.store import Record

MAX_COLLECTION_RECORDS = 200
_DEVELOPER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_JSON_TYPE_NAMES = {"string": "string", "id": "string", "reference": "string", "boolean": "boolean",
                    "datetime": "dateTime", "double": "double"}


@dataclass(frozen=True)
class Saved:
    id: str
    event: Record | None = None
    event_uuid: str | None = None


def _bad_request(code: str, message: str, fields: list[str] | None = None) -> SalesforceApiError:
    return SalesforceApiError(400, code, message, fields if fields is not None else [])


def _json_token(value: Any) -> str:
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int | float):
        return "VALUE_NUMBER_INT" if isinstance(value, int) else "VALUE_NUMBER_FLOAT"
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    return "VALUE_STRING"


def _coerce(field: FieldDef, value: Any) -> Any:
    """The stored value for JSON `value`, or JSON_PARSER_ERROR when its type is wrong."""
    if value is None:
        return None
    ok = {
        "string": isinstance(value, str), "id": isinstance(value, str), "reference": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "double": isinstance(value, int | float) and not isinstance(value, bool),
        "datetime": isinstance(value, str),
    }[field.type]
    if ok and field.type == "datetime":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            ok = False
    if not ok:
        raise SalesforceApiError(
            400, "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {_JSON_TYPE_NAMES[field.type]} from {_json_token(value)} value "
            f"{value!r} or request may be missing a required field",
        )
    if isinstance(value, str) and value == "":
        return None  # Salesforce stores an empty string as null
    return float(value) if field.type == "double" else value


def _values(schema: ObjectSchema, body: Any, *, insert: bool) -> Record:
    """Body fields in canonical spelling, type-checked, writable, within length, references resolved."""
    if not isinstance(body, dict):
        raise SalesforceApiError(
            400, "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {schema.name} from {_json_token(body)} value {body!r}",
        )
    values: Record = {}
    read_only: list[str] = []
    for key, raw in body.items():
        if key == "attributes":
            continue
        field = schema.field(key)
        if field is None:
            raise SalesforceApiError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {schema.name}")
        if field.name == "Id" and insert:
            raise _bad_request("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
        if not (field.createable if insert else field.updateable):
            read_only.append(field.name)
            continue
        values[field.name] = _coerce(field, raw)
    if read_only:
        raise _bad_request(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(read_only)}. Please check the security settings of this "
            "field and verify that it is read/write for your profile or permission set.",
            read_only,
        )
    # An insert needs every required field; an update only may not blank one out.
    checked = schema.fields if insert else [f for f in schema.fields if f.name in values]
    missing = [f.name for f in checked if f.required and values.get(f.name) is None]
    if missing:
        raise _bad_request("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
    for name, value in values.items():
        field = schema.field(name)
        assert field is not None
        if field.max_length is not None and isinstance(value, str) and len(value) > field.max_length:
            raise _bad_request(
                "STRING_TOO_LONG",
                f"{field.label}: data value too large: {value[:field.max_length]}... (max length={field.max_length})",
                [field.name],
            )
    return values


def _check_references(org: SalesforceOrg, schema: ObjectSchema, values: Record) -> None:
    for name, value in list(values.items()):
        field = schema.field(name)
        assert field is not None
        if field.type != "reference" or value is None:
            continue
        assert field.reference_to is not None
        target = schema_for(field.reference_to)
        assert target is not None
        normalized = normalize_id(value)
        if normalized is None or not normalized.startswith(target.key_prefix):
            raise _bad_request("MALFORMED_ID", f"{field.label}: id value of incorrect type: {value}", [field.name])
        if org.get(target.name, normalized) is None:
            raise _bad_request("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [field.name])
        values[name] = normalized


def _unique_pair(org: SalesforceOrg, schema: ObjectSchema, values: Record, first: str, second: str) -> None:
    table = org.table(schema.name)
    for other in table.lookup(first, values[first]):
        if table.rows[other][second] == values[second]:
            # Salesforce's own wording for duplicate setup rows.
            raise _bad_request(
                "DUPLICATE_VALUE", "duplicate value found: <unknown> duplicates value on record with id: <unknown>"
            )


def _check_object_rules(org: SalesforceOrg, schema: ObjectSchema, values: Record, record_id: str | None) -> None:
    """What each object adds to field validation (apis.md S3)."""
    if schema.name == "ServicePresenceStatus" and values.get("DeveloperName") is not None:
        name = values["DeveloperName"]
        if not _DEVELOPER_NAME.fullmatch(name) or "__" in name or name.endswith("_"):
            raise _bad_request(
                "FIELD_INTEGRITY_EXCEPTION",
                "Developer Name: The Developer Name field can only contain underscores and alphanumeric characters. "
                "It must be unique, begin with a letter, not include spaces, not end with an underscore, and not "
                "contain two consecutive underscores.",
                ["DeveloperName"],
            )
        existing = org.status_by_developer_name(name)
        if existing is not None and existing["Id"] != record_id:
            raise _bad_request(
                "DUPLICATE_VALUE",
                f"duplicate value found: DeveloperName duplicates value on record with id: {existing['Id']}",
                ["DeveloperName"],
            )
    elif schema.name == "ServiceChannelStatus":
        _unique_pair(org, schema, values, "ServicePresenceStatusId", "ServiceChannelId")
    elif schema.name == "SetupEntityAccess":
        _unique_pair(org, schema, values, "SetupEntityId", "ParentId")
        values["SetupEntityType"] = "ServicePresenceStatus"


def _operation_refused(schema: ObjectSchema, verb: str) -> SalesforceApiError:
    return _bad_request("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be {verb}: {schema.label}")


def find(org: SalesforceOrg, schema: ObjectSchema, record_id: str) -> Record:
    """The stored record, or 404 NOT_FOUND as Salesforce words it for a malformed or a missing id."""
    normalized = normalize_id(record_id)
    if normalized is None or not normalized.startswith(schema.key_prefix) or schema.is_event:
        raise not_found(f"Provided external ID field does not exist or is not accessible: {record_id}")
    record = org.get(schema.name, normalized)
    if record is None:
        raise not_found(RESOURCE_NOT_FOUND)
    return record


def create(org: SalesforceOrg, schema: ObjectSchema, body: Any) -> Saved:
    if not schema.createable:
        raise _operation_refused(schema, "inserted")
    values = _values(schema, body, insert=True)
    _check_references(org, schema, values)
    _check_object_rules(org, schema, values, None)
    if schema.is_event:
        event = {f.name: values.get(f.name) for f in schema.fields}
        return Saved(org.ids.next(schema.key_prefix), event, str(uuid.uuid4()))
    return Saved(org.insert(schema, values)["Id"])


def update(org: SalesforceOrg, schema: ObjectSchema, record_id: str, body: Any) -> None:
    if not schema.updateable:
        raise _operation_refused(schema, "updated")
    record = find(org, schema, record_id)
    values = _values(schema, body, insert=False)
    _check_references(org, schema, values)
    _check_object_rules(org, schema, values, record["Id"])
    org.update(schema, record["Id"], values)


def delete(org: SalesforceOrg, schema: ObjectSchema, record_id: str) -> None:
    if not schema.deletable:
        raise _operation_refused(schema, "deleted")
    org.delete(schema, find(org, schema, record_id)["Id"])


def enqueued(saved: Saved) -> list[dict[str, Any]]:
    """The note a published event carries in `errors` although it succeeded (apis.md S4)."""
    return [{"statusCode": "OPERATION_ENQUEUED", "message": saved.event_uuid, "fields": []}] if saved.event else []


def create_collection(org: SalesforceOrg, body: Any) -> tuple[list[dict[str, Any]], list[Record]]:
    """`POST /composite/sobjects`: per-record results, and the events to deliver once committed."""
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SalesforceApiError(400, "JSON_PARSER_ERROR", "The request body must be an object with a 'records' array")
    records: list[Any] = body["records"]
    all_or_none = body.get("allOrNone", False)
    if not isinstance(all_or_none, bool):
        raise SalesforceApiError(
            400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of boolean from value {all_or_none!r}"
        )
    if len(records) > MAX_COLLECTION_RECORDS:
        raise SalesforceApiError(
            400, "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION_RECORDS} records into this call",
        )
    schemas: list[ObjectSchema | None] = []
    for record in records:
        type_name = record.get("attributes", {}).get("type") if isinstance(record, dict) else None
        if not isinstance(type_name, str) or not type_name:
            raise SalesforceApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
        schemas.append(schema_for(type_name))

    results: list[dict[str, Any]] = []
    done: list[tuple[ObjectSchema, Saved]] = []
    first_kind = next((s for s in schemas if s is not None), None)
    for record, schema in zip(records, schemas, strict=True):
        try:
            if schema is None:
                raise _bad_request("INVALID_TYPE", f"sObject type '{record['attributes']['type']}' is not supported.")
            if first_kind is not None and schema.setup != first_kind.setup:
                raise _bad_request(
                    "MIXED_DML_OPERATION",
                    "DML operation on setup object is not permitted after you have updated a non-setup object "
                    f"(or vice versa): {schema.name}, original object: {first_kind.name}",
                )
            saved = create(org, schema, record)
        except SalesforceApiError as exc:
            results.append({"success": False, "errors": [exc.record_error()]})
            continue
        done.append((schema, saved))
        results.append({"id": saved.id, "success": True, "errors": enqueued(saved)})

    if all_or_none and len(done) < len(records):
        for schema, saved in reversed(done):
            if saved.event is None:
                org.delete(schema, saved.id)
        rolled_back = {
            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request was using AllOrNone "
                       "header",
            "fields": [],
        }
        return [r if not r["success"] else {"success": False, "errors": [rolled_back]} for r in results], []
    return results, [saved.event for _, saved in done if saved.event is not None]
