"""The Salesforce emulator's state and its in-process API (`app.state.emulator`).

The HTTP routes and the agent simulator call the same methods; every method takes the emulator's lock,
so a simulator thread can drive an emulator that uvicorn serves from another thread.

    emulator = app.state.emulator
    user = emulator.user_by_username("agent1@example.com")
    emulator.set_presence(user.id, "On_Break")      # the agent clicks a status in the Omni widget
    emulator.current_presence(user.id)              # 'On_Break'
    emulator.set_console(user.id, open=False)       # commands for this agent are now lost
    emulator.connect_consoles("ws://127.0.0.1:8765/console", secret)   # consoles as gateway clients
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from presence_sync.emulators.faults import EmulatorClock, FaultInjector
from presence_sync.emulators.salesforce.applier import Console, PresenceApplier
from presence_sync.emulators.salesforce.auth import Session, SessionStore
from presence_sync.emulators.salesforce.budget import ApiBudget
from presence_sync.emulators.salesforce.consoles import MANUAL_REASON, TOOLKIT_REASON, GatewayConsoles
from presence_sync.emulators.salesforce.cursors import QueryCursors
from presence_sync.emulators.salesforce.errors import NoStatusAccessError, UnknownStatusError, UnknownUserError
from presence_sync.emulators.salesforce.hosts import RequestHosts
from presence_sync.emulators.salesforce.options import SalesforceEmulatorOptions
from presence_sync.emulators.salesforce.org import Login, SalesforceOrg
from presence_sync.emulators.salesforce.presence import PresenceBook
from presence_sync.emulators.salesforce.seed import seed_org
from presence_sync.emulators.salesforce.store import Record


@dataclass(frozen=True)
class UserInfo:
    id: str
    username: str
    email: str
    name: str
    profile: str
    is_active: bool


class OrgUpdate(BaseModel):
    """A partial change of the org's settings (`PUT /__emulator/org`); None leaves a setting as it is."""

    model_config = ConfigDict(extra="forbid")

    block_username_password_flow: bool | None = None
    api_daily_limit: int | None = Field(None, ge=0)
    mfa_users: list[str] | None = None
    connected_app_creation_enabled: bool | None = None


class SalesforceEmulator:
    def __init__(self, options: SalesforceEmulatorOptions) -> None:
        self.options = options
        self.clock = EmulatorClock()
        self.faults = FaultInjector(options.seed)
        self.lock = threading.RLock()
        self._build(options.seed)

    def _build(self, seed: int) -> None:
        self.seed = seed
        self.org: SalesforceOrg = seed_org(self.options, seed, self.clock)
        self.presence = PresenceBook(self.org)
        self.applier = PresenceApplier(self.org, self.presence, self.clock, self.lock,
                                       self.options.default_apply_delay_ms)
        self.consoles = GatewayConsoles(self.org, self.presence, self.clock, self.lock, self.applier.console)
        self.applier.on_change = self._applied_from_event
        self.sessions = SessionStore(self.org.org_id)
        self.budget = ApiBudget(self.org.settings)
        self.cursors = QueryCursors(self.org.ids, self.options.query_page_size)

    def reset(self, seed: int | None = None) -> None:
        """Back to the freshly seeded org (optionally with another seed); faults and stats cleared."""
        self.consoles.stop()
        with self.lock:
            self.applier.close()
            self._build(self.seed if seed is None else seed)
            self.faults.reset(seed)

    # -- people -------------------------------------------------------------------------------------

    def _info(self, user: Record) -> UserInfo:
        profile = self.org.get("Profile", user["ProfileId"]) if user["ProfileId"] else None
        return UserInfo(user["Id"], user["Username"], user["Email"], user["Name"],
                        profile["Name"] if profile else "", user["IsActive"])

    def _user(self, user_id: str) -> Record:
        user = self.org.user(user_id)
        if user is None:
            raise UnknownUserError(f"no user with id {user_id!r}")
        return user

    def user(self, user_id: str) -> UserInfo:
        with self.lock:
            return self._info(self._user(user_id))

    def user_by_username(self, username: str) -> UserInfo | None:
        with self.lock:
            user = self.org.user_by_username(username)
            return self._info(user) if user else None

    def create_user(self, username: str, email: str, name: str, profile: str) -> UserInfo:
        """A new active user; like the seeded ones, it has no password and an open console."""
        with self.lock:
            return self._info(self.org.create_user(username, email, name, profile))

    def create_profile(self, name: str) -> str:
        with self.lock:
            return str(self.org.create_profile(name)["Id"])

    def create_channel(self, developer_name: str, label: str, related_entity: str) -> str:
        with self.lock:
            return str(self.org.create_channel(developer_name, label, related_entity)["Id"])

    def configure_org(self, update: OrgUpdate) -> dict[str, Any]:
        with self.lock:
            settings = self.org.settings
            if update.block_username_password_flow is not None:
                settings.block_username_password_flow = update.block_username_password_flow
            if update.api_daily_limit is not None:
                settings.api_daily_limit = update.api_daily_limit
            if update.mfa_users is not None:
                settings.mfa_users = {u.lower() for u in update.mfa_users}
            if update.connected_app_creation_enabled is not None:
                settings.connected_app_creation_enabled = update.connected_app_creation_enabled
            return settings.as_dict()

    def org_settings(self) -> dict[str, Any]:
        with self.lock:
            return self.org.settings.as_dict()

    # -- presence -----------------------------------------------------------------------------------

    def set_presence(self, user_id: str, developer_name: str | None, reason: str = MANUAL_REASON) -> bool:
        """The agent picks a status in the Omni widget (None: logs out of Omni).

        A console connected to a gateway pushes the change with `reason` (what
        `lightning:omniChannelStatusChanged` says: `OmniManualStatusChange` for the agent's own click,
        `OmniSupervisorStatusChange`, `OmniPushTimeout`, `OmniDeclineWork`, ...).

        Returns False when the agent was already in that status (no new spell). Raises
        `UnknownUserError`, `UnknownStatusError`, or `NoStatusAccessError` when the agent's profile
        does not grant the status.
        """
        with self.lock:
            user = self._user(user_id)
            status_id = None
            if developer_name is not None:
                status = self.org.status_by_developer_name(developer_name)
                if status is None:
                    raise UnknownStatusError(f"no presence status with DeveloperName {developer_name!r}")
                if not self.org.has_status_access(user["Id"], status["Id"]):
                    raise NoStatusAccessError(
                        f"{user['Username']} has no access to presence status {status['DeveloperName']}: "
                        "grant it to the user's profile (SetupEntityAccess on the profile's permission set)"
                    )
                status_id = status["Id"]
            changed = self.presence.change(user["Id"], status_id, self.clock.now())
            if changed and self.consoles.running:
                self.consoles.changed(user["Id"], self.org.status(status_id) if status_id else None,
                                      reason if status_id else None)
            return changed

    def current_presence(self, user_id: str) -> str | None:
        """The DeveloperName of the user's current status, None when logged out of Omni."""
        with self.lock:
            status_id = self.presence.current_status_id(self._user(user_id)["Id"])
            status = self.org.status(status_id) if status_id else None
            return status["DeveloperName"] if status else None

    def set_console(self, user_id: str, open: bool, apply_delay_ms: int | None = None,
                    denied_statuses: Iterable[str] | None = None) -> Console:
        """Open or close the agent's console, make it slow, or have the toolkit refuse it statuses."""
        with self.lock:
            user_id = self._user(user_id)["Id"]
            console = self.applier.set_console(user_id, open, apply_delay_ms, denied_statuses)
        self.consoles.refresh(user_id)
        return console

    def _applied_from_event(self, user_id: str, status_id: str | None) -> None:
        # omniChannelStatusChanged fires in the console for a change a toolkit call made, whoever asked.
        if self.consoles.running:
            self.consoles.changed(user_id, self.org.status(status_id) if status_id else None,
                                  TOOLKIT_REASON if status_id else None)

    def connect_consoles(self, url: str, secret: str, user_ids: Iterable[str] | None = None) -> list[str]:
        """Every agent's console (or those of `user_ids`) connects to the presence-sync gateway at `url`.

        `secret` is the one the org shares with the gateway (what the Apex class signs tokens with).
        Returns the user ids whose consoles connect; commands then come from the gateway, not from
        `Presence_Sync_Command__e` (which the platform-event applier still serves when published).
        """
        with self.lock:
            if user_ids is None:
                integration = self.org.connected_app.run_as_user_id if self.org.connected_app else None
                users = [self.org.table("User").get(i) for i in self.org.table("User").all_ids()]
                chosen = [u["Id"] for u in users if u and u["IsActive"] and u["Id"] != integration]
            else:
                chosen = [self._user(user_id)["Id"] for user_id in user_ids]
        self.consoles.start(url, secret, chosen)
        return chosen

    def disconnect_consoles(self) -> None:
        self.consoles.stop()

    def console(self, user_id: str) -> Console:
        with self.lock:
            return self.applier.console(self._user(user_id)["Id"])

    # -- API plumbing -------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> Session:
        """The caller's session (401 INVALID_SESSION_ID otherwise); lock held by the caller."""
        return self.sessions.authenticate(
            token, self.clock.now(), self.options.session_timeout_s, self.faults.settings.token_ttl_s
        )

    def credentials(self, hosts: RequestHosts) -> dict[str, Any]:
        """The seeded (fake) credentials, with the host names as seen from `hosts`."""
        with self.lock:
            app = self.org.connected_app
            assert app is not None
            integration = self.org.get("User", app.run_as_user_id)
            assert integration is not None
            login: Login = self.org.logins[integration["Id"]]
            return {
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "username": integration["Username"],
                "password": login.password,
                "security_token": login.security_token,
                "my_domain_host": hosts.my_domain,
                "login_host": hosts.login,
                "environment": self.options.environment,
                "org_id": self.org.org_id,
                "run_as_username": integration["Username"],
                "jwt_private_key_pem": app.jwt_private_key_pem,
                "jwt_public_key_pem": app.jwt_public_key_pem,
            }

    def stats(self) -> dict[str, Any]:
        with self.lock:
            now: datetime = self.clock.now()
            snapshot = self.faults.stats.snapshot(now)
            snapshot["api_usage"] = {"used": self.budget.used(now), "limit": self.budget.limit}
            snapshot["presence_commands"] = self.applier.stats()
            snapshot["console_channel"] = self.consoles.stats()
            snapshot["open_query_cursors"] = len(self.cursors)
            snapshot["sessions"] = len(self.sessions)
            return snapshot
