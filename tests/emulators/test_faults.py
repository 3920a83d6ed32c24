"""Fault injection is deterministic for a seed and looks like each system's own errors."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from presence_sync.emulators.faults import DroppedConnection, FaultInjector, FaultMiddleware, FaultSettings


def _app(injector: FaultInjector) -> tuple[FastAPI, list[str]]:
    handled: list[str] = []
    app = FastAPI()

    @app.post("/things/{thing_id}")
    async def touch(thing_id: str) -> dict[str, str]:
        handled.append(thing_id)
        return {"id": thing_id}

    @app.get("/__emulator/stats")
    async def stats() -> dict[str, int]:
        return {"ok": 1}

    app.add_middleware(FaultMiddleware, injector=injector, error_body=lambda status, msg: [{"errorCode": str(status), "message": msg}])
    return app, handled


async def _outcomes(seed: int, settings: FaultSettings, n: int = 60) -> list[str]:
    injector = FaultInjector(seed=seed)
    injector.configure(settings)
    app, _ = _app(injector)
    outcomes = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emu") as client:
        for i in range(n):
            try:
                outcomes.append(str((await client.post(f"/things/{i}")).status_code))
            except DroppedConnection:
                outcomes.append("dropped")
    return outcomes


async def test_same_seed_same_faults_and_other_seed_differs():
    settings = FaultSettings(error_rate=0.3, error_status=503, drop_rate=0.1)
    first = await _outcomes(7, settings)
    assert first == await _outcomes(7, settings)
    assert first != await _outcomes(8, settings)
    assert {"200", "503", "dropped"} <= set(first)


async def test_injected_error_uses_the_systems_error_shape_and_retry_after():
    injector = FaultInjector(seed=1)
    injector.configure(FaultSettings(error_rate=1.0, error_status=503))
    app, handled = _app(injector)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emu") as client:
        response = await client.post("/things/a")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()[0]["errorCode"] == "503"
    assert handled == []  # an injected error never reaches the handler


async def test_controls_are_never_faulted_and_stats_count_route_templates():
    injector = FaultInjector(seed=1)
    injector.configure(FaultSettings(error_rate=1.0))
    app, _ = _app(injector)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emu") as client:
        assert (await client.get("/__emulator/stats")).status_code == 200
        await client.post("/things/1")
        await client.post("/things/2")
    snapshot = injector.stats.snapshot(clock_now=__import__("datetime").datetime(2026, 1, 1))
    assert snapshot["requests"]["POST /things/{thing_id}"] == 2
    assert snapshot["write_requests"] == 2
    assert snapshot["errors_injected"] == {"status_503": 2}


async def test_drop_after_handles_the_request_but_loses_the_answer():
    injector = FaultInjector(seed=3)
    injector.configure(FaultSettings(drop_rate=1.0))
    app, handled = _app(injector)
    kinds = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emu") as client:
        for i in range(20):
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(f"/things/{i}")
    kinds = injector.stats.injected
    # Some drops happened after the handler ran (its effect stands), some before (nothing happened).
    assert kinds["drop_after"] == len(handled) > 0
    assert kinds["drop_before"] == 20 - len(handled) > 0


async def test_rate_limit_answers_429_with_retry_after():
    injector = FaultInjector(seed=1)
    injector.configure(FaultSettings(rate_limit_per_s=2))
    app, handled = _app(injector)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emu") as client:
        statuses = [(await client.post(f"/things/{i}")).status_code for i in range(5)]
        limited = await client.post("/things/x")
    assert statuses[:2] == [200, 200]
    assert 429 in statuses[2:]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert len(handled) == statuses.count(200)
