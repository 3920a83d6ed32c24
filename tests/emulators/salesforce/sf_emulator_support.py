"""Constants and helpers shared by the Salesforce emulator tests (fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

MY_DOMAIN_URL = "http://localhost:8000"
LOGIN_URL = "http://127.0.0.1:8000"
DATA = "/services/data/v62.0"
AGENTS = 20


class FrozenClock:
    """Stands in for the emulator clock's `now`, so a test decides how much time passes between changes."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def password_form(creds: dict[str, str], **overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "password",
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "username": creds["username"],
        "password": creds["password"] + creds["security_token"],
    }
    form.update(overrides)
    return form


async def query(api: httpx.AsyncClient, soql: str) -> dict[str, Any]:
    response = await api.get("/query", params={"q": soql})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def single_id(api: httpx.AsyncClient, soql: str) -> str:
    records = (await query(api, soql))["records"]
    assert len(records) == 1, records
    return records[0]["Id"]  # type: ignore[no-any-return]
