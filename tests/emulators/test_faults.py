"""Fault injection is deterministic for a seed and looks like each system's own errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

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

    @app.post("/bodies")
    async def take(body: dict[str, str]) -> dict[str, str]:
        handled.append(body["id"])
        return body

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


# --- targeted faults: the next `count` requests whose path (and method) match ----------------------


def _targeted(*faults: dict) -> FaultSettings:
    return FaultSettings.model_validate({"targeted": list(faults)})


async def _post(app: FastAPI, path: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emu") as client:
        return await client.post(path, **kwargs)  # type: ignore[arg-type]


async def test_a_targeted_fault_hits_only_the_next_count_matching_requests():
    injector = FaultInjector(seed=1)
    injector.configure(_targeted({"kind": "error", "status": 500, "path": "/things/a*", "method": "POST", "count": 2}))
    app, handled = _app(injector)

    statuses = [(await _post(app, path)).status_code for path in ("/things/b", "/things/a1", "/things/a2", "/things/a3")]

    assert statuses == [200, 500, 500, 200]
    assert handled == ["b", "a3"]
    assert injector.stats.injected == {"error": 2}


async def test_setting_faults_again_restores_the_counts_and_empty_settings_end_them():
    injector = FaultInjector(seed=1)
    settings = _targeted({"kind": "error", "count": 1})
    app, _ = _app(injector)

    injector.configure(settings)
    first = [(await _post(app, "/things/x")).status_code for _ in range(2)]
    injector.configure(settings)
    again = (await _post(app, "/things/x")).status_code
    injector.configure(FaultSettings())
    after = (await _post(app, "/things/x")).status_code

    assert first == [503, 200] and again == 503 and after == 200


async def test_a_fault_without_a_count_lasts_until_the_faults_are_set_again():
    injector = FaultInjector(seed=1)
    injector.configure(_targeted({"kind": "error", "count": None}))
    app, handled = _app(injector)

    statuses = {(await _post(app, f"/things/{i}")).status_code for i in range(25)}

    assert statuses == {503} and handled == []


async def test_targeted_faults_leave_the_weathers_sequence_as_it_was():
    weather = {"error_rate": 0.3, "drop_rate": 0.1}
    plain = await _outcomes(5, FaultSettings.model_validate(weather), n=40)
    with_targeted = await _outcomes(
        5, FaultSettings.model_validate({**weather, "targeted": [{"kind": "html_error", "path": "/things/1?", "count": 5}]}), n=40
    )

    hit = {f"{i}" for i in range(10, 15)}
    assert [o for i, o in enumerate(with_targeted) if str(i) not in hit] == [o for i, o in enumerate(plain) if str(i) not in hit]
    assert [with_targeted[i] for i in range(10, 15)] == ["502"] * 5


async def test_an_html_error_page_is_a_load_balancers_and_the_request_is_not_handled():
    injector = FaultInjector(seed=1)
    injector.configure(_targeted({"kind": "html_error"}))
    app, handled = _app(injector)

    response = await _post(app, "/things/a")

    assert response.status_code == 502 and response.headers["content-type"] == "text/html"
    assert "<title>502 Bad Gateway</title>" in response.text
    assert handled == []


async def test_drop_after_takes_effect_then_loses_the_answer_and_drop_before_does_not():
    injector = FaultInjector(seed=1)
    injector.configure(_targeted({"kind": "drop_after", "path": "/things/after"}, {"kind": "drop_before", "path": "/things/before"}))
    app, handled = _app(injector)

    for path in ("/things/after", "/things/before"):
        with pytest.raises(httpx.RemoteProtocolError):
            await _post(app, path)
    again = await _post(app, "/things/after")

    assert handled == ["after", "after"] and again.status_code == 200
    assert injector.stats.injected == {"drop_after": 1, "drop_before": 1}


async def test_an_oversized_body_is_the_real_answer_padded_to_the_size_asked():
    injector = FaultInjector(seed=1)
    injector.configure(_targeted({"kind": "oversized_body", "extra_bytes": 3 * 1024 * 1024 + 5}))
    app, handled = _app(injector)

    response = await _post(app, "/things/big")

    expected = len(b'{"id":"big"}') + 3 * 1024 * 1024 + 5
    assert int(response.headers["content-length"]) == len(response.content) == expected
    assert response.json() == {"id": "big"} and handled == ["big"]


class _AsgiCall:
    """One request straight into the middleware: what it sends, and a client that disconnects on demand."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.waiting = asyncio.Event()  # the app is waiting for the client (to send more or to leave)
        self.disconnect = asyncio.Event()
        self._request_read = False

    async def receive(self) -> dict:
        if not self._request_read:
            self._request_read = True
            return {"type": "http.request", "body": b"", "more_body": False}
        self.waiting.set()
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    @property
    def body_chunks(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


def _scope(path: str = "/things/a", method: str = "POST") -> dict:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": [], "scheme": "http", "server": ("emu", 80), "client": ("127.0.0.1", 1), "root_path": "",
            "http_version": "1.1"}


def _middleware(injector: FaultInjector, pauses: list[float] | None = None) -> tuple[FaultMiddleware, list[str]]:
    app, handled = _app(injector)
    middleware = app.build_middleware_stack()
    while not isinstance(middleware, FaultMiddleware):
        middleware = middleware.app
    if pauses is not None:
        async def pause(seconds: float) -> None:
            pauses.append(seconds)
        middleware.sleep = pause
    return middleware, handled


async def test_a_request_whose_client_hung_up_before_it_was_read_is_counted_as_abandoned_and_changes_nothing():
    injector = FaultInjector(seed=1)
    middleware, handled = _middleware(injector)

    async def gone() -> dict:
        return {"type": "http.disconnect"}  # uvicorn's answer once the client has left, body buffered or not

    with contextlib.suppress(Exception):  # whatever the framework makes of the disconnect, it is not a write
        await middleware(_scope("/bodies"), gone, _AsgiCall().send)
    app, handled_later = _app(injector)
    answered = await _post(app, "/bodies", json={"id": "b"})

    assert handled == [] and handled_later == ["b"] and answered.status_code == 200
    assert injector.stats.by_route == {"POST /bodies": 2}
    assert injector.stats.abandoned == {"POST /bodies": 1}


async def test_a_silent_answer_sends_nothing_until_the_client_gives_up():
    injector = FaultInjector(seed=1)
    injector.configure(_targeted({"kind": "silent"}))
    middleware, handled = _middleware(injector)
    call = _AsgiCall()

    answering = asyncio.create_task(middleware(_scope(), call.receive, call.send))
    await asyncio.wait_for(call.waiting.wait(), 10)
    assert call.sent == [] and not answering.done()
    call.disconnect.set()
    await asyncio.wait_for(answering, 10)

    assert call.sent == [] and handled == []


async def test_a_silent_answer_cuts_a_client_that_never_gives_up_after_max_hold():
    injector = FaultInjector(seed=1)
    injector.configure(_targeted({"kind": "silent", "max_hold_s": 0.01}))
    middleware, handled = _middleware(injector)
    call = _AsgiCall()

    with pytest.raises(DroppedConnection):
        await asyncio.wait_for(middleware(_scope(), call.receive, call.send), 10)
    assert handled == []


async def test_a_slow_body_trickles_in_chunks_at_the_rate_asked():
    injector = FaultInjector(seed=1)
    injector.configure(_targeted({"kind": "slow_body", "bytes_per_s": 40}))
    pauses: list[float] = []
    middleware, handled = _middleware(injector, pauses)
    call = _AsgiCall()

    await asyncio.wait_for(middleware(_scope("/things/slowly"), call.receive, call.send), 10)

    body = b'{"id":"slowly"}'
    assert call.sent[0]["type"] == "http.response.start" and handled == ["slowly"]
    assert call.body_chunks == [body[i : i + 4] for i in range(0, len(body), 4)]  # 40 B/s: 4 bytes every 0.1 s
    assert pauses == [0.1] * (len(call.body_chunks) - 1)
    assert [m.get("more_body") for m in call.sent[1:]] == [True] * (len(call.body_chunks) - 1) + [False]


async def test_one_byte_a_second_and_a_client_that_leaves_stops_the_trickle():
    injector = FaultInjector(seed=1)
    injector.configure(_targeted({"kind": "slow_body", "bytes_per_s": 1}))
    pauses: list[float] = []
    middleware, _ = _middleware(injector, pauses)
    call = _AsgiCall()

    async def leave_after_three_bytes(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            call.disconnect.set()
            await asyncio.sleep(0)  # the disconnect watcher sees it
            await asyncio.sleep(0)

    middleware.sleep = leave_after_three_bytes
    await asyncio.wait_for(middleware(_scope(), call.receive, call.send), 10)

    assert call.body_chunks == [b"{", b'"', b"i"] and pauses == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("system", ["salesforce", "cxone"])
def test_no_route_of_either_emulator_hands_work_to_a_thread(system: str) -> None:
    """FastAPI runs a plain `def` route or dependency in a worker thread: a hand-off there and back per
    request, which cost the CXone emulator a third of its CPU at 64 requests in flight. They are all
    `async def` (none of them blocks)."""
    import inspect

    from fastapi.routing import APIRoute

    from presence_sync.emulators.stack import EmulatorStack

    salesforce_app, cxone_app = EmulatorStack.build_apps()
    app = salesforce_app if system == "salesforce" else cxone_app

    def callables(dependant: Any) -> Iterator[tuple[str, Any]]:
        yield dependant.name or "route", dependant.call
        for sub in dependant.dependencies:
            yield from callables(sub)

    threaded = sorted(
        f"{route.path}: {name}"
        for route in app.routes
        if isinstance(route, APIRoute)
        for name, call in callables(route.dependant)
        if call is not None and not inspect.iscoroutinefunction(call)
    )
    assert threaded == []
