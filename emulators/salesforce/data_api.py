"""The REST data API under `/services/data/{version}/` (apis.md S2-S4)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from presence_sync.emulators.faults import MalformedRecordFault, spoil_record, targeted_fault
from presence_sync.emulators.responses import FastJSONResponse
from presence_sync.emulators.salesforce import dml
from presence_sync.emulators.salesforce.auth import Session
from presence_sync.emulators.salesforce.emulator import SalesforceEmulator
from presence_sync.emulators.salesforce.errors import SalesforceApiError, not_found
from presence_sync.emulators.salesforce.query import BoundPath, run_query, shape
from presence_sync.emulators.salesforce.schema import ObjectSchema, schema_for

API_VERSION_PATTERN = re.compile(r"v\d{2}\.0")
_AUTHORIZATION = re.compile(r"(?i)(?:Bearer|OAuth)\s+(\S+)")


@dataclass(frozen=True)
class ApiCall:
    emulator: SalesforceEmulator
    session: Session
    version: str


async def api_call(request: Request, version: str) -> ApiCall:
    """Every data API call: a known version, a live session, one request from the daily budget."""
    if not API_VERSION_PATTERN.fullmatch(version):
        raise not_found()
    emulator: SalesforceEmulator = request.app.state.emulator
    match = _AUTHORIZATION.fullmatch(request.headers.get("authorization", "").strip())
    with emulator.lock:
        session = emulator.authenticate(match.group(1) if match else None)
        now = emulator.clock.now()
        # Set before charging so that a 403 for a spent budget also reports the usage.
        request.state.api_usage = (emulator.budget.used(now), emulator.budget.limit)
        request.state.api_usage = emulator.budget.charge(now)
    return ApiCall(emulator, session, version)


Call = Annotated[ApiCall, Depends(api_call)]
router = APIRouter(prefix="/services/data/{version}")


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise SalesforceApiError(400, "JSON_PARSER_ERROR", "No content to map due to end-of-input")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" at [line:{exc.lineno}, column:{exc.colno}]" if isinstance(exc, json.JSONDecodeError) else ""
        raise SalesforceApiError(400, "JSON_PARSER_ERROR", f"Unexpected character in the JSON body{where}") from exc


def _schema(name: str) -> ObjectSchema:
    schema = schema_for(name)
    if schema is None:
        raise not_found()
    return schema


@router.get("/query")
async def query(call: Call, request: Request, q: str | None = None) -> JSONResponse:
    emulator = call.emulator
    with emulator.lock:
        total, rows = run_query(emulator.org, q or "", call.version)
        page = emulator.cursors.first_page(call.session.user_id, total, rows, call.version, emulator.clock.now())
    return FastJSONResponse(_with_fault(request, page))


@router.get("/query/{locator}")
async def query_more(call: Call, request: Request, locator: str) -> JSONResponse:
    emulator = call.emulator
    with emulator.lock:
        page = emulator.cursors.next_page(call.session.user_id, locator, call.version, emulator.clock.now())
    return FastJSONResponse(_with_fault(request, page))


def _with_fault(request: Request, page: dict[str, Any]) -> dict[str, Any]:
    """The query page as sent: with one spoiled record when a `malformed_record` fault hits it."""
    malformed = targeted_fault(request.scope, MalformedRecordFault)
    return {**page, "records": spoil_record(page["records"], malformed)} if malformed is not None else page


@router.get("/limits")
async def limits(call: Call) -> JSONResponse:
    emulator = call.emulator
    with emulator.lock:
        used = emulator.budget.used(emulator.clock.now())
        limit = emulator.budget.limit
    return JSONResponse({"DailyApiRequests": {"Max": limit, "Remaining": max(0, limit - used)}})


@router.post("/sobjects/{sobject}")
async def create_record(call: Call, sobject: str, request: Request) -> JSONResponse:
    schema = _schema(sobject)
    body = await _json_body(request)
    emulator = call.emulator
    with emulator.lock:
        saved = dml.create(emulator.org, schema, body)
        if saved.event is not None:
            emulator.applier.deliver([saved.event])
    return JSONResponse({"id": saved.id, "success": True, "errors": dml.enqueued(saved)}, status_code=201)


@router.get("/sobjects/{sobject}/{record_id}")
async def retrieve_record(call: Call, sobject: str, record_id: str, fields: str | None = None) -> JSONResponse:
    schema = _schema(sobject)
    if fields is None:
        paths = tuple(BoundPath((f,), (f.name,)) for f in schema.fields)
    else:
        wanted = [name.strip() for name in fields.split(",") if name.strip()]
        for name in wanted:
            if schema.field(name) is None:
                raise SalesforceApiError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{schema.name}'. "
                                         "If you are attempting to use a custom field, be sure to append the '__c' "
                                         "after the custom field name. Please reference your WSDL or the describe "
                                         "call for the appropriate names.")
        paths = tuple(BoundPath((f,), (f.name,)) for f in (schema.field(n) for n in wanted) if f is not None)
    emulator = call.emulator
    with emulator.lock:
        record = dml.find(emulator.org, schema, record_id)
        body = shape(emulator.org, schema, record, paths, call.version)
    return JSONResponse(body)


@router.patch("/sobjects/{sobject}/{record_id}")
async def update_record(call: Call, sobject: str, record_id: str, request: Request) -> Response:
    schema = _schema(sobject)
    body = await _json_body(request)
    with call.emulator.lock:
        dml.update(call.emulator.org, schema, record_id, body)
    return Response(status_code=204)


@router.delete("/sobjects/{sobject}/{record_id}")
async def delete_record(call: Call, sobject: str, record_id: str) -> Response:
    schema = _schema(sobject)
    with call.emulator.lock:
        dml.delete(call.emulator.org, schema, record_id)
    return Response(status_code=204)


@router.post("/composite/sobjects")
async def create_records(call: Call, request: Request) -> JSONResponse:
    body = await _json_body(request)
    emulator = call.emulator
    with emulator.lock:
        results, events = dml.create_collection(emulator.org, body)
        emulator.applier.deliver(events)
    return FastJSONResponse(results)
