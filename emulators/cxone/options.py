"""How a CXone emulator is built: tenant, area, seed, size, credentials, token lifetime, paging.

    create_app(CxoneEmulatorOptions(agents=10_000, seed=7, public_url="http://127.0.0.1:8081"))
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from presence_sync.emulators.demo_center import CXONE_ACCESS_KEY_USER, DEFAULT_AGENT_COUNT

Area = Literal["na1", "au1", "eu1", "uk1", "jp1", "na2"]

# na2 is the FedRAMP area, served from its own domain (apis.md C1).
AREA_DOMAINS: dict[str, str] = {"na2": "nicecxone-gov.com"}
DEFAULT_DOMAIN = "niceincontact.com"


class CxoneEmulatorOptions(BaseModel):
    """Options of `create_app`; every field has a demo-friendly default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    agents: int = Field(DEFAULT_AGENT_COUNT, ge=0, le=100_000)
    tenant_id: str = Field("11ee7c1a-5e3d-4b7a-9c0e-00000000c0de", min_length=1)
    area: Area = "na1"
    public_url: str | None = None
    """Base URL the discovery and OpenID answers name; None: the URL the request came in on."""
    token_ttl_s: int = Field(3600, gt=0)
    """Access-token lifetime; a `token_ttl_s` set through `PUT /__emulator/faults` overrides it."""
    page_size: int = Field(100, ge=1)
    """`top` when a list request gives none."""
    max_page_size: int = Field(10_000, ge=1)
    """A larger `top` is lowered to this: clients must advance `skip` by the records they got."""
    client_id: str = Field("cxone-emulator-app", min_length=1)
    client_secret: SecretStr = SecretStr("cxone-emulator-app-secret")
    access_key_id: str = Field("EMUAKIDPRESENCESYNC0001", min_length=1)
    access_key_secret: SecretStr = SecretStr("emu-access-key-secret-0001")
    access_key_user: str = CXONE_ACCESS_KEY_USER

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"public_url {value!r} must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _page_sizes_agree(self) -> Self:
        if self.page_size > self.max_page_size:
            raise ValueError(f"page_size ({self.page_size}) must not exceed max_page_size ({self.max_page_size})")
        return self

    @property
    def domain(self) -> str:
        return AREA_DOMAINS.get(self.area, DEFAULT_DOMAIN)
