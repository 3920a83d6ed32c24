"""`POST /services/oauth2/token` (apis.md S1)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from presence_sync.emulators.salesforce.auth import issue_token
from presence_sync.emulators.salesforce.emulator import SalesforceEmulator
from presence_sync.emulators.salesforce.hosts import resolve_hosts

router = APIRouter()


@router.post("/services/oauth2/token")
async def token(request: Request) -> JSONResponse:
    emulator: SalesforceEmulator = request.app.state.emulator
    form: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    hosts = resolve_hosts(request.headers.get("host"), request.url.scheme, emulator.options)
    with emulator.lock:
        body = issue_token(emulator.org, emulator.sessions, form, hosts, emulator.clock.now())
    return JSONResponse(body, headers={"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"})
