"""Whether a host that fails to connect is down, told in seconds instead of after the whole retry budget.

A host that has answered this client once is having a blip when a connection fails: the retry policy
carries on. A host that never answered gets one quick probe (a HEAD of its root, any HTTP answer
will do, within `probe_seconds`); if that fails too, the call fails at once with the probe's cause.

    reach = Reachability(probe_seconds=3.0)
    reach.answered(response.request.url)                 # after every response
    cause = await reach.unreachable_cause(request.url)   # after a connect failure: None = retry as usual
"""

from __future__ import annotations

import asyncio
import os
import socket

import httpx

DEFAULT_PROBE_SECONDS = 3.0


def origin_of(url: httpx.URL) -> str:
    """'https://host:port' of a URL (what a connection goes to; never its path or query)."""
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


class Reachability:
    """The origins that answered this client, and one probe at a time of an origin that never did.

    `probe_seconds=None` never probes (a client on an in-process transport has no network to probe).
    """

    def __init__(self, probe_seconds: float | None = DEFAULT_PROBE_SECONDS) -> None:
        self.probe_seconds = probe_seconds
        self.probes = 0  # made so far (the tests count them)
        self._answered: set[str] = set()
        self._probing: dict[str, asyncio.Task[str | None]] = {}

    def answered(self, url: httpx.URL) -> None:
        self._answered.add(origin_of(url))

    async def unreachable_cause(self, url: httpx.URL) -> str | None:
        """Why the origin of `url` is unreachable; None when it answered before, answers the probe, or
        probing is off. Requests failing together share one probe."""
        origin = origin_of(url)
        if self.probe_seconds is None or origin in self._answered:
            return None
        probe = self._probing.get(origin)
        if probe is None:
            self.probes += 1
            probe = self._probing[origin] = asyncio.ensure_future(probe_origin(origin, self.probe_seconds))
            probe.add_done_callback(lambda _: self._probing.pop(origin, None))
        cause = await asyncio.shield(probe)
        if cause is None:
            self._answered.add(origin)
        return cause


async def probe_origin(origin: str, seconds: float) -> str | None:
    """None if `origin` gives any HTTP answer to a HEAD of its root within `seconds`; else why not.

    Through the same proxy settings (environment) as the clients, so it tests the path they take.
    """
    try:
        async with asyncio.timeout(seconds), httpx.AsyncClient(timeout=seconds, follow_redirects=False) as client:
            await client.head(origin + "/")
    except httpx.ConnectTimeout:
        return f"no connection within {seconds:g} s"
    except (TimeoutError, httpx.TimeoutException):
        return f"it took the connection but sent no answer within {seconds:g} s"
    except httpx.HTTPError as error:
        return _os_cause(error)
    return None


def _os_cause(error: BaseException) -> str:
    """The operating system's words (e.g. 'Connection refused'), however deep httpx and anyio wrapped them."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, socket.gaierror):  # the name did not resolve: its own words say so
            return f"{seen.strerror} (the host name did not resolve)"
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno)  # asyncio's strerror is "Connect call failed (...)": say why
        seen = seen.__cause__ or seen.__context__
    return str(error) or type(error).__name__
