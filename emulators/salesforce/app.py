"""The Salesforce emulator as a FastAPI app.

    app = create_app(SalesforceEmulatorOptions(agents=20))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        creds = (await client.get("/__emulator/credentials")).json()
    app.state.emulator.set_presence(user_id, "On_Break")   # in-process control
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from presence_sync.emulators.faults import FaultMiddleware
from presence_sync.emulators.salesforce.controls_api import router as controls_router
from presence_sync.emulators.salesforce.data_api import API_VERSION_PATTERN, api_call
from presence_sync.emulators.salesforce.data_api import router as data_router
from presence_sync.emulators.salesforce.emulator import SalesforceEmulator
from presence_sync.emulators.salesforce.errors import (
    ControlError,
    OAuthError,
    SalesforceApiError,
    error_body,
    not_found,
)
from presence_sync.emulators.salesforce.oauth_api import router as oauth_router
from presence_sync.emulators.salesforce.options import SalesforceEmulatorOptions

_DATA_PREFIX = "/services/data/"
_OAUTH_PREFIX = "/services/oauth2/"


class DataApiMiddleware:
    """Salesforce's data API conventions that sit around every route.

    A trailing slash is optional (`/sobjects/Obj/` is `/sobjects/Obj`), and every response to an
    authenticated call carries `Sforce-Limit-Info: api-usage=USED/LIMIT`.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(_DATA_PREFIX):
            await self.app(scope, receive, send)
            return
        if path.endswith("/"):
            scope["path"] = path.rstrip("/")
            scope["raw_path"] = scope["path"].encode()
        state = scope.setdefault("state", {})

        async def send_with_usage(message: dict[str, Any]) -> None:
            usage = state.get("api_usage")
            if message["type"] == "http.response.start" and usage is not None:
                used, limit = usage
                message["headers"] = [*message.get("headers", []),
                                      (b"sforce-limit-info", f"api-usage={used}/{limit}".encode())]
            await send(message)

        await self.app(scope, receive, send_with_usage)


async def _salesforce_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SalesforceApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _oauth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OAuthError)
    return JSONResponse(exc.body(), status_code=400)


async def _control_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ControlError)
    return JSONResponse({"detail": exc.message}, status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Unrouted paths and methods, answered in the shape of the surface they were aimed at."""
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    if path.startswith(_DATA_PREFIX) and exc.status_code in (404, 405):
        # Salesforce checks the session (and spends a request of the budget) before it looks for the
        # resource: an unknown path answers 401 without a valid session, and its 404/405 carries
        # Sforce-Limit-Info like every other data API answer (apis.md S2).
        version = path[len(_DATA_PREFIX):].split("/", 1)[0]
        if API_VERSION_PATTERN.fullmatch(version):
            try:
                await api_call(request, version)
            except SalesforceApiError as error:
                return JSONResponse(error.body(), status_code=error.status)
    if path.startswith(_DATA_PREFIX) or path.startswith(_OAUTH_PREFIX):
        if exc.status_code == 404:
            return JSONResponse(not_found().body(), status_code=404)
        if exc.status_code == 405:
            allowed = exc.headers.get("Allow", "") if exc.headers else ""
            message = f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}"
            return JSONResponse([{"message": message, "errorCode": "METHOD_NOT_ALLOWED"}], status_code=405,
                                headers=exc.headers)
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(options: SalesforceEmulatorOptions | None = None) -> FastAPI:
    """A Salesforce org per apis.md S1-S4 plus its `/__emulator/` controls, seeded from `options`."""
    emulator = SalesforceEmulator(options or SalesforceEmulatorOptions())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        emulator.disconnect_consoles()
        with emulator.lock:
            emulator.applier.close()

    app = FastAPI(
        title="Salesforce emulator (presence-sync)",
        docs_url="/__emulator/docs",
        redoc_url=None,
        openapi_url="/__emulator/openapi.json",
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    for router in (oauth_router, data_router, controls_router):
        # Not include_router: FastAPI 0.150 wraps included routers lazily, and FaultMiddleware's
        # stats could then not see route templates (they would count concrete paths).
        app.router.routes.extend(router.routes)
    app.add_exception_handler(SalesforceApiError, _salesforce_error)
    app.add_exception_handler(OAuthError, _oauth_error)
    app.add_exception_handler(ControlError, _control_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(DataApiMiddleware)
    app.add_middleware(FaultMiddleware, injector=emulator.faults, error_body=error_body)
    return app
