"""Single-flight bearer tokens, shared by both clients.

However many calls find the token missing, stale or refused at the same moment, ONE token request
is made and all of them wait for its outcome (the new token, or the same error). A generation
counter tells a caller whose 401 arrives after someone else already renewed that it only needs to
retry with the current token.

    gate = TokenGate(fetch_token, is_stale=lambda token: token.expires_at <= clock())
    response = await session.request("GET", url, auth=await BearerAuth.current(gate))   # 401: renew, resend once
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any, Generic, Protocol, TypeVar

import httpx
from pydantic import SecretStr


class BearerToken(Protocol):
    @property
    def access_token(self) -> SecretStr: ...


TokenT = TypeVar("TokenT", bound=BearerToken)


def _never_stale(_token: Any) -> bool:
    return False


class TokenGate(Generic[TokenT]):
    """Holds the current token; `fetch(previous)` obtains the next one (previous may carry a refresh token)."""

    def __init__(
        self,
        fetch: Callable[[TokenT | None], Awaitable[TokenT]],
        *,
        is_stale: Callable[[TokenT], bool] = _never_stale,
    ) -> None:
        self._fetch = fetch
        self._is_stale = is_stale
        self._token: TokenT | None = None
        self._generation = 0
        self._pending: asyncio.Future[tuple[TokenT, int]] | None = None

    @property
    def token(self) -> TokenT | None:
        return self._token

    @property
    def generation(self) -> int:
        """How many tokens have been obtained so far."""
        return self._generation

    def secret_values(self) -> list[str]:
        """The current access (and refresh) token, for scrubbing server text that might echo them."""
        if self._token is None:
            return []
        values = [self._token.access_token.get_secret_value()]
        refresh: SecretStr | None = getattr(self._token, "refresh_token", None)
        if refresh is not None:
            values.append(refresh.get_secret_value())
        return values

    async def current(self) -> tuple[TokenT, int]:
        """A usable token and its generation, fetching one first if there is none or it is stale."""
        token, generation = self._token, self._generation
        if token is None or self._is_stale(token):
            return await self.renew(generation)
        return token, generation

    async def renew(self, seen_generation: int) -> tuple[TokenT, int]:
        """Replace the token of generation `seen_generation`; a no-op if it was already replaced."""
        if self._token is not None and self._generation != seen_generation:
            return self._token, self._generation
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._fetch_next())
            # Retrieve the outcome even if every waiter was cancelled, so asyncio does not warn.
            self._pending.add_done_callback(lambda done: done.cancelled() or done.exception())
        # shield: one waiter being cancelled must not cancel the fetch the others wait on.
        return await asyncio.shield(self._pending)

    async def _fetch_next(self) -> tuple[TokenT, int]:
        try:
            token = await self._fetch(self._token)
            self._token = token
            self._generation += 1
            return token, self._generation
        finally:
            self._pending = None


class BearerAuth(httpx.Auth, Generic[TokenT]):
    """`Authorization: Bearer` with one token of a TokenGate; on a 401 it renews (single-flight) and resends once.

        auth = await BearerAuth.current(gate)                   # the token this request is queued with
        response = await session.request("GET", url, auth=auth)  # a second 401 is returned as is

    Made per request, before the request waits for a connection slot: a request queued with a token
    that is refused renews that token's generation only, so however many were queued with it, one
    token request is made, and those answered after the renewal resend with the new token. Async
    only: the gate's futures live on the event loop.
    """

    # The 401's body is read before the token is renewed, so its connection is back in the pool while
    # the token request runs: with every connection held by a refused request it could not get one.
    requires_response_body = True

    def __init__(self, gate: TokenGate[TokenT], token: TokenT, generation: int) -> None:
        self.gate = gate
        self.token = token
        self.generation = generation

    @classmethod
    async def current(cls, gate: TokenGate[TokenT]) -> BearerAuth[TokenT]:
        """An auth with the gate's current token (fetched first if there is none or it is stale)."""
        token, generation = await gate.current()
        return cls(gate, token, generation)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("BearerAuth renews tokens on the event loop: send with an httpx.AsyncClient")
        yield request  # pragma: no cover - makes this a generator, as httpx expects

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        _set_bearer(request, self.token)
        response = yield request
        if response.status_code != 401:
            return
        token, _ = await self.gate.renew(self.generation)
        _set_bearer(request, token)
        yield request


def _set_bearer(request: httpx.Request, token: BearerToken) -> None:
    request.headers["Authorization"] = f"Bearer {token.access_token.get_secret_value()}"
