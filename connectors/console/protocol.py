"""The console channel's wire protocol: what the agent's console component and the gateway say.

Transport: **one WebSocket per open console** (`wss://<gateway>/console`), JSON text frames, one
object per frame with a `type`. Chosen over Server-Sent Events + POST because:

- one connection carries everything, in order: commands down; acknowledgements, pushed status
  changes, token renewals and heartbeats up. SSE + POST needs a second request per ack and push,
  each authenticated again, and behind several gateway replicas the POST may land on another
  replica than the stream;
- the token travels in the first message, never in the URL. The browser's `WebSocket` and
  `EventSource` both refuse custom headers, so SSE would put the token in the query string (where
  proxies and access logs keep it) or in a cookie (third-party to the Lightning domain);
- Lightning Web Security and Locker allow both once the gateway is a CSP Trusted Site with
  `connect-src` (Salesforce documents CSP Trusted Sites for WebSocket connections explicitly);
- reconnecting is ours either way: SSE's automatic retry and `Last-Event-ID` are not needed because
  undelivered and unacknowledged commands stay in the broker and are sent again on every connect.

Conversation (`->` console to gateway, `<-` gateway to console):

    -> {"type": "hello", "protocol": 1, "token": "<token from Apex>", "client": "PresenceSyncApplier/2"}
    <- {"type": "welcome", "protocol": 1, "connection_id": "...", "user_id": "005...",
        "token_expires_at": "2026-11-25T10:15:00Z", "heartbeat_seconds": 25,
        "limits": {"max_message_bytes": 4096, "messages_per_second": 5, "burst": 30}}
    <- {"type": "command", "command_id": "c-1", "issued_at": "2026-11-25T10:00:01.250Z",
        "user_id": "005...", "action": "set_status", "status_id": "0N5...", "status": "On_Break",
        "if_showing": ["Available", null]}
    -> {"type": "ack", "command_id": "c-1", "outcome": "applied",
        "status": {"status_id": "0N5...", "status": "On_Break", "label": "On Break"}}
    -> {"type": "ack", "command_id": "c-2", "outcome": "failed", "error": "<the Omni toolkit's error>"}
    -> {"type": "ack", "command_id": "c-1", "outcome": "ignored", "reason": "duplicate"}   # or "stale"
    -> {"type": "ack", "command_id": "c-3", "outcome": "ignored", "reason": "not as expected",
        "status": {"status_id": "0N5...", "status": "Lunch", "label": "Lunch"}}
    -> {"type": "status_changed", "event": "status_changed", "reason": "OmniManualStatusChange",
        "status": {"status_id": "0N5...", "status": "Lunch", "label": "Lunch"}, "at": "..."}
    -> {"type": "status_changed", "event": "logout", "reason": null, "status": null, "at": "..."}
    -> {"type": "renew", "token": "<a fresh token>"}      <- {"type": "renewed", "token_expires_at": "..."}
    -> {"type": "ping"}                                   <- {"type": "pong"}

- `hello` must be the first message, within `auth_timeout` seconds of the connection opening.
- `command.action` is `set_status` (with `status_id`, the ServicePresenceStatus Id, and `status`, its
  developer name) or `logout`. A command goes only to the connections of its `user_id`.
- `command.if_showing` (optional) makes it a compare-and-set: the developer names the console may
  show for the command to apply (`null`: logged out of Omni-Channel), i.e. what the sync last saw
  there and what a write of its own still landing would leave. The console compares them with what
  it shows when the command's turn comes (`getServicePresenceStatusId`); anything else means the
  agent (or a supervisor, a push timeout) changed it after the sync decided, and the command would
  undo that choice: it is acknowledged `ignored`, `not as expected`, with the status shown, and the
  sync decides again from the agent's change. Without `if_showing` the command applies regardless.
- `ack.outcome`: `applied` (with the status the console shows afterwards; `null` after a logout),
  `failed` (with the console API's `error`, e.g. no access to the status), `ignored` (`reason`:
  `duplicate`, a command id this console already handled; `stale`, older than the newest command
  it applied; `not as expected`, the console did not show one of `if_showing`, with the `status` it shows).
- `status_changed.reason` is what Salesforce gave: `lightning:omniChannelStatusChanged` says
  `OmniToolkitStatusChange` (a component set it: us, or another toolkit user), `OmniManualStatusChange`,
  `OmniSupervisorStatusChange`, `OmniPushTimeout`, `OmniDeclineWork` or `OmniLoginStatusChange`;
  `lightning:omniChannelLogout` (`event: "logout"`) says `DuplicateLogin`, `DuplicateLoginInSameBrowser`,
  `MaintenanceLogout`, `OmniSupervisorLogout`, or nothing. When the change is the result of one of our
  commands, `command_id` names it.
- Tokens are single-use: a reconnect or renewal presents a new one (see `tokens.py`). A renewal must be
  for the same user and org; the connection then lives until the new expiry.
- Limits: a message from the console may be at most `max_message_bytes` (4 KiB) and the console may
  send `burst` messages at once, refilled at `messages_per_second`. Every message the component sends
  is under 1 KiB; it sends a few a minute.

The gateway closes a connection with one of `CloseCode`'s codes and a short reason. The component
fetches a new token and reconnects after 4001, 4003 and 4004; reconnects with backoff after 1001,
1006, 1011, 4000, 4002, 4005, 4006 and 4007; and stops after 4009 and 4010 (log, no retry loop).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

PROTOCOL_VERSION = 1
CONSOLE_PATH = "/console"

MAX_MESSAGE_BYTES = 4096
MESSAGES_PER_SECOND = 5.0
MESSAGE_BURST = 30
HEARTBEAT_SECONDS = 25
AUTH_TIMEOUT_SECONDS = 10.0
MAX_CONSOLES_PER_USER = 8

TOOLKIT_REASON = "OmniToolkitStatusChange"
# `ack.reason` of a compare-and-set command the console did not apply (it showed none of `if_showing`).
NOT_AS_EXPECTED = "not as expected"
STATUS_CHANGE_REASONS = frozenset(
    {
        TOOLKIT_REASON,
        "OmniManualStatusChange",
        "OmniSupervisorStatusChange",
        "OmniPushTimeout",
        "OmniDeclineWork",
        "OmniLoginStatusChange",
    }
)
LOGOUT_REASONS = frozenset({"DuplicateLogin", "DuplicateLoginInSameBrowser", "MaintenanceLogout", "OmniSupervisorLogout"})


class CloseCode(IntEnum):
    """Why the gateway closed a console's connection (WebSocket close codes; 4000-4999 are ours)."""

    GOING_AWAY = 1001  # the gateway is shutting down: reconnect (to another replica) with backoff
    BAD_MESSAGE = 4000  # not JSON, a field missing or of the wrong type, or anything before `hello`
    TOKEN_EXPIRED = 4001  # the token (or the last renewal) expired: fetch a new one, reconnect
    AUTH_TIMEOUT = 4002  # no `hello` within the auth timeout
    TOKEN_INVALID = 4003  # forged, malformed, another audience or org, or a lifetime too long
    TOKEN_REPLAYED = 4004  # this token was already used: every connect and renewal needs a fresh one
    UNKNOWN_TYPE = 4005  # a message type this gateway does not know
    MESSAGE_TOO_BIG = 4006  # a message over `max_message_bytes`
    RATE_LIMITED = 4007  # more messages than the burst allows
    WRONG_USER = 4008  # a renewal token for another user or org than the connection's
    PROTOCOL_UNSUPPORTED = 4009  # a `hello.protocol` this gateway does not speak: stop
    REPLACED = 4010  # more than MAX_CONSOLES_PER_USER consoles for one user: the oldest is closed; stop


class ProtocolViolation(Exception):
    """A console broke the protocol; the gateway closes the connection with `code` and `reason`."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        # A close frame's reason is at most 123 bytes.
        self.reason = reason.encode()[:123].decode(errors="ignore")


_SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id_18(value: str) -> str:
    """The 18-character form of a Salesforce record Id (15 or 18 characters in), e.g. for a map key.

    >>> salesforce_id_18("005000000000001")
    '005000000000001AAA'
    """
    if not _SALESFORCE_ID.fullmatch(value):
        raise ValueError(f"not a Salesforce record Id (15 or 18 letters and digits): {value!r}")
    base = value[:15]
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, char in enumerate(base[chunk * 5 : chunk * 5 + 5]) if "A" <= char <= "Z")
        suffix += _SUFFIX_ALPHABET[bits]
    return base + suffix


def iso(moment: datetime) -> str:
    """UTC, millisecond precision, `Z`: what JavaScript's `Date.toISOString()` writes."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Message(BaseModel):
    # Unknown fields are ignored (a newer component may add some); unknown types are not.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ConsoleStatus(_Message):
    """An Omni-Channel presence status as the console reports it."""

    status_id: Annotated[str, Field(min_length=15, max_length=18)]
    status: Annotated[str | None, Field(max_length=80)] = None  # developer (API) name
    label: Annotated[str | None, Field(max_length=255)] = None


class Hello(_Message):
    type: Literal["hello"]
    protocol: int
    token: Annotated[str, Field(min_length=1, max_length=2048)]
    client: Annotated[str | None, Field(max_length=80)] = None


class Ack(_Message):
    type: Literal["ack"]
    command_id: Annotated[str, Field(min_length=1, max_length=64)]
    outcome: Literal["applied", "failed", "ignored"]
    status: ConsoleStatus | None = None
    error: Annotated[str | None, Field(max_length=1000)] = None
    reason: Annotated[str | None, Field(max_length=200)] = None


class StatusChanged(_Message):
    type: Literal["status_changed"]
    event: Literal["status_changed", "logout"]
    status: ConsoleStatus | None = None
    reason: Annotated[str | None, Field(max_length=80)] = None
    at: datetime
    command_id: Annotated[str | None, Field(max_length=64)] = None

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("`at` needs a time zone (ISO 8601 with Z)")
        return value.astimezone(UTC)


class Renew(_Message):
    type: Literal["renew"]
    token: Annotated[str, Field(min_length=1, max_length=2048)]


class Ping(_Message):
    type: Literal["ping"]


ConsoleMessage = Annotated[Hello | Ack | StatusChanged | Renew | Ping, Field(discriminator="type")]
_CONSOLE_MESSAGE: TypeAdapter[Hello | Ack | StatusChanged | Renew | Ping] = TypeAdapter(ConsoleMessage)
CONSOLE_MESSAGE_TYPES = frozenset({"hello", "ack", "status_changed", "renew", "ping"})


def parse_console_message(text: str | bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Hello | Ack | StatusChanged | Renew | Ping:
    """One frame from a console, checked; raises `ProtocolViolation` with the close code to use."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > max_bytes:
        raise ProtocolViolation(CloseCode.MESSAGE_TOO_BIG, f"message of {size} bytes; the limit is {max_bytes}")
    try:
        data: Any = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolViolation(CloseCode.BAD_MESSAGE, "not a JSON message") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolViolation(CloseCode.BAD_MESSAGE, "a message is a JSON object with a string `type`")
    if data["type"] not in CONSOLE_MESSAGE_TYPES:
        raise ProtocolViolation(CloseCode.UNKNOWN_TYPE, f"unknown message type {data['type'][:40]!r}")
    try:
        return _CONSOLE_MESSAGE.validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or data["type"]
        raise ProtocolViolation(CloseCode.BAD_MESSAGE, f"{data['type']}: {where}: {first['msg']}") from None


def welcome(*, connection_id: str, user_id: str, token_expires_at: datetime, heartbeat_seconds: int,
            max_message_bytes: int, messages_per_second: float, burst: int) -> dict[str, Any]:
    return {
        "type": "welcome",
        "protocol": PROTOCOL_VERSION,
        "connection_id": connection_id,
        "user_id": user_id,
        "token_expires_at": iso(token_expires_at),
        "heartbeat_seconds": heartbeat_seconds,
        "limits": {"max_message_bytes": max_message_bytes, "messages_per_second": messages_per_second, "burst": burst},
    }


def renewed(token_expires_at: datetime) -> dict[str, Any]:
    return {"type": "renewed", "token_expires_at": iso(token_expires_at)}


PONG: dict[str, Any] = {"type": "pong"}
