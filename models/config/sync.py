"""How the sync loop runs: intervals, conflict policy, flap detection, concurrency, the state store."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from presence_sync.models.config.base import ConfigModel, Text, config_dir
from presence_sync.models.errors import config_problem
from presence_sync.models.secrets import PrefectSecretStr, SecretValue
from presence_sync.models.store import InvalidStoreUrlError, normalise_store_url

DEFAULT_STORE_URL = "sqlite:///.presence-sync/state.db"


class ConflictPolicy(StrEnum):
    NEWEST_WINS = "newest_wins"
    CXONE_WINS = "cxone_wins"
    SALESFORCE_WINS = "salesforce_wins"


DEFAULT_SALESFORCE_LIMIT = "presence-sync-salesforce-api"
DEFAULT_CXONE_LIMIT = "presence-sync-cxone-api"


class SharedBudgetSettings(ConfigModel):
    """The API budget every sync shard shares, as Prefect global rate limits (`presence-sync limits install`).

    Off by default: one process paces itself (`budget_reserve_fraction`, 429s honoured). With
    `enabled: true` each shard takes `chunk` request slots at a time from the named limits, so N
    shards together spend what one would; a missing limit or an unreachable Prefect API falls back to
    the local pacing, with one warning.
    """

    enabled: bool = False
    salesforce_limit: Text = DEFAULT_SALESFORCE_LIMIT
    cxone_limit: Text = DEFAULT_CXONE_LIMIT
    chunk: int = Field(default=16, ge=1, le=1000)  # request slots taken per Prefect call, spent locally
    wait_seconds: float = Field(default=30.0, gt=0, le=600)  # longest wait for slots before a request fails
    # What `limits install` sizes them from. None: the org's DailyApiRequests, read from Salesforce.
    salesforce_daily_requests: int | None = Field(default=None, ge=1)
    # CXone publishes no fixed figure (apis.md: 429 + Retry-After); the tenant's agreed rate.
    cxone_requests_per_second: float = Field(default=50.0, gt=0, le=10_000)


class AlertSettings(ConfigModel):
    """When the sync emits its alert events (`presence-sync alerts install` turns them into notifications)."""

    heartbeat_seconds: float = Field(default=30.0, gt=0, le=3600)  # while a window holds its lease
    no_holder_seconds: float = Field(default=180.0, ge=30, le=86_400)  # no heartbeat this long: alert
    lag_p95_seconds: float = Field(default=10.0, gt=0)
    lag_min_samples: int = Field(default=20, ge=1)  # fewer timed changes say nothing about p95
    gave_up_writes: int = Field(default=1, ge=1)
    rejected_records: int = Field(default=1, ge=1)
    console_lost_commands: int = Field(default=20, ge=1)  # per repeat period: consoles not listening
    budget_used_fraction: float = Field(default=0.75, gt=0, le=1)  # of the org's daily API requests
    repeat_seconds: float = Field(default=600.0, ge=10, le=86_400)  # one event per kind at most this often


class SyncSettings(ConfigModel):
    """How the sync loop runs."""

    interval_seconds: float = Field(default=1.0, gt=0, le=300)
    window_minutes: int = Field(default=10, ge=1, le=24 * 60)
    conflict_policy: ConflictPolicy = ConflictPolicy.NEWEST_WINS
    flap_threshold: int = Field(default=6, ge=2)
    flap_window_seconds: float = Field(default=60.0, gt=0)
    echo_timeout_seconds: float = Field(default=30.0, gt=0)
    max_concurrency: int = Field(default=64, ge=1, le=1024)
    store_url: SecretValue = Field(default=DEFAULT_STORE_URL, validate_default=True)
    budget_reserve_fraction: float = Field(default=0.2, ge=0, lt=1)
    # Deadlines and caps: what one bad answer may cost. One HTTP attempt (connect to last body byte);
    # one system's poll (all its pages and retries); one write unit (a CXone state, or a batch of
    # Salesforce commands). A tick waits at most poll + write deadline for its work; the rest carries
    # on in the background or is retried next tick.
    request_deadline_seconds: float = Field(default=30.0, gt=0, le=600)
    max_response_bytes: int = Field(default=32 * 1024 * 1024, ge=64 * 1024, le=1024**3)
    poll_deadline_seconds: float = Field(default=60.0, gt=0, le=3600)
    write_deadline_seconds: float = Field(default=60.0, gt=0, le=3600)
    shared_budget: SharedBudgetSettings = SharedBudgetSettings()
    alerts: AlertSettings = AlertSettings()

    @field_validator("store_url")
    @classmethod
    def _usable_store_url(cls, url: SecretStr, info: ValidationInfo) -> SecretStr:
        if isinstance(url, PrefectSecretStr):
            return url  # resolved lazily; the store checks it when it connects
        text = _absolute_sqlite_url(url.get_secret_value().strip(), config_dir(info))
        try:
            normalise_store_url(text)  # the store's own check, so both agree on what is usable
        except InvalidStoreUrlError as error:
            problem = str(error).removeprefix("sync.store_url").strip()
            raise config_problem(problem, "change the URL as said (put its password in a ${ENV_VAR})") from None
        return SecretStr(text)


def _absolute_sqlite_url(url: str, base: Path) -> str:
    # SQLAlchemy reads sqlite:///relative against the process's cwd; the config means its own folder.
    if not url.lower().startswith("sqlite:///"):
        return url
    path, question, query = url[len("sqlite:///"):].partition("?")
    if not path or path == ":memory:" or Path(path).is_absolute():
        return url
    return f"sqlite:///{base / path}{question}{query}"
