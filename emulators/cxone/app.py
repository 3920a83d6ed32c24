"""The NICE CXone emulator as a FastAPI app (apis.md C1-C4 plus its `/__emulator/` controls).

    app = create_app(CxoneEmulatorOptions(agents=500, seed=1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cxone") as http:
        config = (await http.get("/.well-known/cxone-configuration", params={"tenantId": tenant_id})).json()
    app.state.emulator.tenant.contact(1000001, "offer")     # drive agents in-process

or on loopback: `with serve_in_thread(create_app()) as server: ...` (emulators.server).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from presence_sync.emulators.cxone.api import api, public
from presence_sync.emulators.cxone.controls import controls
from presence_sync.emulators.cxone.emulator import CxoneEmulator
from presence_sync.emulators.cxone.errors import CxoneError, error_body
from presence_sync.emulators.cxone.options import CxoneEmulatorOptions
from presence_sync.emulators.faults import FaultMiddleware


def create_app(options: CxoneEmulatorOptions | None = None) -> FastAPI:
    """A fresh CXone emulator, seeded per `options` (default: 200 demo agents, seed 0)."""
    emulator = CxoneEmulator(options or CxoneEmulatorOptions())
    app = FastAPI(
        title="NICE CXone emulator",
        docs_url="/__emulator/docs",
        redoc_url=None,
        openapi_url="/__emulator/openapi.json",
    )
    app.state.emulator = emulator
    for router in (public, api, controls):
        # Not include_router: FastAPI 0.150 wraps included routers lazily, and FaultMiddleware's
        # stats could then not see route templates (they would count concrete paths).
        app.router.routes.extend(router.routes)
    app.add_exception_handler(CxoneError, _cxone_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(FaultMiddleware, injector=emulator.faults, error_body=error_body)
    return app


async def _cxone_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CxoneError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"error": "invalid_request", "error_description": describe_invalid_input(exc)}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code, headers=exc.headers)


def describe_invalid_input(exc: RequestValidationError) -> str:
    """One line per problem, naming where it is: `query parameter 'top': must be >= 1`."""
    problems = []
    for error in exc.errors():
        where, *path = error.get("loc", ()) or ("request",)
        if error.get("type") == "json_invalid":
            problems.append("the request body is not valid JSON")
            continue
        name = ".".join(str(part) for part in path)
        place = {"query": "query parameter", "path": "path segment", "body": "body field", "header": "header"}.get(
            str(where), str(where)
        )
        target = f"{place} {name!r}" if name else "the request body"
        problems.append(f"{target}: {error.get('msg', 'is invalid')}")
    return "; ".join(problems) or "the request is invalid"
