"""The CXone emulator's state as one object: `app.state.emulator`.

    emulator = app.state.emulator
    emulator.tenant.set_state(1000001, "Unavailable", "Lunch")   # the agent simulator, in-process
    emulator.clock.advance(3600)                                   # expire every token
    emulator.reset(seed=3)                                         # what POST /__emulator/reset does
"""

from __future__ import annotations

from starlette.requests import Request

from presence_sync.emulators.cxone.auth import CxoneAuthority
from presence_sync.emulators.cxone.options import CxoneEmulatorOptions
from presence_sync.emulators.cxone.tenant import CxoneTenant
from presence_sync.emulators.faults import EmulatorClock, FaultInjector


class CxoneEmulator:
    """Options, clock, faults, the tenant (agents, states, sessions) and the authority (tokens)."""

    def __init__(self, options: CxoneEmulatorOptions) -> None:
        self.options = options
        self.clock = EmulatorClock()
        self.faults = FaultInjector(options.seed)
        self.tenant = CxoneTenant(self.clock, options.agents)
        self.auth = CxoneAuthority(options, self.clock, self.faults)

    def reset(self, seed: int | None = None) -> None:
        """Empty state, seeded again per the options; faults off and stats cleared (`seed` reseeds faults)."""
        self.faults.reset(seed)
        self.tenant.reset(self.options.agents)
        self.auth.reset()

    def base_url(self, request: Request) -> str:
        """This server's base URL as clients should use it: `public_url`, else the URL the request used."""
        return self.options.public_url or str(request.base_url).rstrip("/")


async def emulator_of(request: Request) -> CxoneEmulator:
    """FastAPI dependency: the emulator serving this request."""
    return request.app.state.emulator
