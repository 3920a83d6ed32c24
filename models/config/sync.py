"""How the sync loop runs: intervals, conflict policy, flap detection, concurrency, the state store."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from presence_sync.models.config.base import ConfigModel, config_dir
from presence_sync.models.errors import config_problem
from presence_sync.models.secrets import PrefectSecretStr, SecretValue
from presence_sync.models.store import InvalidStoreUrlError, normalise_store_url

DEFAULT_STORE_URL = "sqlite:///.presence-sync/state.db"


class ConflictPolicy(StrEnum):
    NEWEST_WINS = "newest_wins"
    CXONE_WINS = "cxone_wins"
    SALESFORCE_WINS = "salesforce_wins"


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
