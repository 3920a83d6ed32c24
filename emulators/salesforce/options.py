"""How a Salesforce emulator is built: sizes, limits, hosts and org settings.

    options = SalesforceEmulatorOptions(agents=50, api_daily_limit=1_000, query_page_size=10)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from presence_sync.emulators.demo_center import DEFAULT_AGENT_COUNT

Environment = Literal["production", "sandbox"]


class SalesforceEmulatorOptions(BaseModel):
    """Options of `create_app`; every field has the demo's default."""

    seed: int = 0
    agents: int = Field(DEFAULT_AGENT_COUNT, ge=0, le=100_000)
    api_daily_limit: int = Field(5_000_000, ge=0)
    session_timeout_s: int = Field(7200, gt=0)
    my_domain_host: str | None = Field(
        None,
        description="host[:port] of the org's My Domain; None: any localhost[:port] or *.my.salesforce.com host",
    )
    environment: Environment = "production"
    query_page_size: int = Field(2000, ge=1, le=2000)
    default_apply_delay_ms: int = Field(0, ge=0)
    block_username_password_flow: bool = False
    mfa_users: list[str] = Field(default_factory=list)
    connected_app_creation_enabled: bool = False
