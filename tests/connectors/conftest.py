"""In-process fakes of Salesforce and CXone for the connector unit tests.

Each fake is an `httpx.MockTransport` handler that plays the server as apis.md describes it (hosts,
status codes, bodies, headers), counts what it was sent, and lets a test script faults. They are
deliberately small: the full emulators are exercised by the integration tests.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from presence_sync.connectors import (
    ClientCredentialsFlow,
    CxoneCredentials,
    JwtFlow,
    PasswordFlow,
    RetryPolicy,
    SalesforceCredentials,
)

SF_MY_DOMAIN = "acme.my.salesforce.com"
SF_INSTANCE = f"https://{SF_MY_DOMAIN}"
SF_ORG_ID = "00D000000000001AAA"
SF_USER_ID = "005000000000001AAA"
SF_DATA = "/services/data/v62.0"

CX_TENANT = "11eb0d6c-aaaa-bbbb-cccc-0242ac110002"
CX_AUTH = "https://na1.nice-incontact.com"
CX_API = "https://api-na1.niceincontact.com"
CX_BASE = "/incontactapi/services/v33.0"

# Values a test greps the logs and error messages for: none may ever appear.
SF_SECRETS = {
    "client_secret": "sf-client-secret-9f8e7d",
    "password": "sf-password-Hunter2",
    "security_token": "sfSecTokenXYZ123",
}
SALESFORCE_FLOWS = {flow.model_fields["flow"].default: flow for flow in (PasswordFlow, ClientCredentialsFlow, JwtFlow)}
CX_SECRETS = {"client_secret": "cx-client-secret-4b3a2c", "access_key_secret": "cx-access-key-secret-77aa"}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", **(headers or {})
    })


def sf_error(status: int, code: str, message: str, fields: list[str] | None = None) -> httpx.Response:
    return json_response(status, [{"message": message, "errorCode": code, "fields": fields or []}])


@dataclass
class Fault:
    """A scripted answer (or transport error) for the next requests whose path starts with `path`."""

    path: str
    respond: Callable[[httpx.Request], httpx.Response]
    times: int = 1


@dataclass
class FaultScript:
    faults: list[Fault] = field(default_factory=list)

    def add(self, path: str, respond: Callable[[httpx.Request], httpx.Response], times: int = 1) -> None:
        self.faults.append(Fault(path, respond, times))

    def status(self, path: str, status: int, body: Any = None, headers: dict[str, str] | None = None,
               times: int = 1) -> None:
        self.add(path, lambda _request: json_response(status, body, headers), times)

    def error(self, path: str, error: type[httpx.TransportError], times: int = 1) -> None:
        def raise_it(request: httpx.Request) -> httpx.Response:
            raise error("scripted failure", request=request)

        self.add(path, raise_it, times)

    def take(self, request: httpx.Request) -> httpx.Response | None:
        for fault in self.faults:
            if request.url.path.startswith(fault.path) and fault.times > 0:
                fault.times -= 1
                return fault.respond(request)
        return None


def form_of(request: httpx.Request) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(request.content.decode()).items()}


# ------------------------------------------------------------------------------------------ Salesforce


class FakeSalesforce:
    """Salesforce per apis.md S1-S4: token endpoint on login/test/My Domain hosts, data API on the instance."""

    SETUP_TYPES = {"ServicePresenceStatus", "ServiceChannelStatus", "SetupEntityAccess"}

    def __init__(self, private_key_pem: str, public_key_pem: str) -> None:
        self.client_id = "3MVG9fake.consumer.key"
        self.client_secret = SF_SECRETS["client_secret"]
        self.username = "integration@acme.example"
        self.password = SF_SECRETS["password"]
        self.security_token = SF_SECRETS["security_token"]
        self.private_key_pem = private_key_pem
        self.public_key_pem = public_key_pem
        self.block_username_password_flow = False
        self.mfa_users: set[str] = set()
        self.issue_refresh_tokens = False
        self.api_limit = 15000
        self.api_used = 0
        self.page_size = 2000
        self.query_records: dict[str, list[dict[str, Any]]] = {}
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.valid_tokens: set[str] = set()
        self.valid_refresh_tokens: set[str] = set()
        self.token_forms: list[dict[str, str]] = []
        self.token_hosts: list[str] = []
        self.calls: Counter[str] = Counter()
        self.composite_sizes: list[int] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        # Lets a test fail one composite call as a whole (e.g. a 500) depending on its records.
        self.composite_failure: Callable[[list[dict[str, Any]]], httpx.Response | None] = lambda records: None
        self.faults = FaultScript()
        self._ids = itertools.count(1)
        self._cursors: dict[str, list[dict[str, Any]]] = {}

    # -- test helpers
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def expire_sessions(self) -> None:
        self.valid_tokens.clear()

    @property
    def token_requests(self) -> int:
        return len(self.token_forms)

    def credentials(self, **overrides: Any) -> SalesforceCredentials:
        """This org's credentials: the password flow, or `flow=` another with the settings it uses (None drops one)."""
        login_url = overrides.pop("login_url", "https://login.salesforce.com")
        values: dict[str, Any] = {
            "flow": "password",
            "client_id": self.client_id,
            "client_secret": SecretStr(self.client_secret),
            "username": self.username,
            "password": SecretStr(self.password),
            "security_token": SecretStr(self.security_token),
        }
        values.update(overrides)
        flow = SALESFORCE_FLOWS[values["flow"]]
        auth = {name: value for name, value in values.items() if name in flow.model_fields and value is not None}
        return SalesforceCredentials(login_url=login_url, auth=auth)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):015d}"

    # -- the server
    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            for _ in range(3):  # let other requests in, as a real server would
                await asyncio.sleep(0)
            return self._answer(request)
        finally:
            self.in_flight -= 1

    def _answer(self, request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url.path}"
        self.calls[key] += 1
        scripted = self.faults.take(request)
        if request.url.path == "/services/oauth2/token":
            return scripted or self._token(request)
        if scripted is not None:
            return self._with_limit_info(scripted)
        return self._with_limit_info(self._data(request))

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = form_of(request)
        self.token_forms.append(form)
        self.token_hosts.append(request.url.host)
        grant = form.get("grant_type")
        my_domain = request.url.host == SF_MY_DOMAIN

        def oauth_error(code: str, description: str, status: int = 400) -> httpx.Response:
            return json_response(status, {"error": code, "error_description": description})

        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = jwt.decode(
                    form.get("assertion", ""), self.public_key_pem, algorithms=["RS256"],
                    audience=["https://login.salesforce.com", "https://test.salesforce.com"],
                )
            except jwt.PyJWTError:
                return oauth_error("invalid_grant", "invalid assertion")
            if claims.get("iss") != self.client_id:
                return oauth_error("invalid_client_id", "client identifier invalid")
            if claims.get("sub") != self.username:
                return oauth_error("invalid_grant", "user hasn't approved this consumer")
            return self._issue(refresh=False)
        if grant not in ("password", "client_credentials", "refresh_token"):
            return oauth_error("unsupported_grant_type", "grant type not supported")
        if form.get("client_id") != self.client_id:
            return oauth_error("invalid_client_id", "client identifier invalid")
        if form.get("client_secret") != self.client_secret:
            return oauth_error("invalid_client", "invalid client credentials")
        if grant == "client_credentials":
            if not my_domain:
                return oauth_error("invalid_grant", "request not supported on this domain")
            return self._issue(refresh=False, opaque=True)
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.valid_refresh_tokens:
                return oauth_error("invalid_grant", "expired access/refresh token")
            return self._issue(refresh=False)
        if (
            self.block_username_password_flow
            or form.get("username") in self.mfa_users
            or form.get("username") != self.username
            or form.get("password") != self.password + self.security_token
        ):
            return oauth_error("invalid_grant", "authentication failure")
        return self._issue(refresh=self.issue_refresh_tokens)

    def _issue(self, *, refresh: bool, opaque: bool = False) -> httpx.Response:
        number = next(self._ids)
        token = f"00D!access-token-{number:06d}"
        self.valid_tokens.add(token)
        body: dict[str, Any] = {
            "access_token": token,
            "instance_url": SF_INSTANCE,
            "id": f"https://login.salesforce.com/id/{SF_ORG_ID}/{SF_USER_ID}",
            "token_type": "Bearer",
            "issued_at": "1764064800000",
            "signature": "c2lnbmF0dXJl",
        }
        if opaque:
            body["token_format"] = "opaque"
        if refresh:
            body["refresh_token"] = f"5Aep-refresh-{number:06d}"
            self.valid_refresh_tokens.add(body["refresh_token"])
        return json_response(200, body)

    def _with_limit_info(self, response: httpx.Response) -> httpx.Response:
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.api_limit}"
        return response

    def _data(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != SF_MY_DOMAIN:
            return httpx.Response(404, content=b"<html>not here</html>")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.api_used >= self.api_limit:
            return sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self.api_used += 1
        path = request.url.path.removeprefix(SF_DATA)
        if request.method == "GET" and path == "/query":
            return self._query_first(request.url.params["q"])
        if request.method == "GET" and path.startswith("/query/"):
            return self._query_next(path.removeprefix("/query/"))
        if request.method == "POST" and path == "/composite/sobjects":
            return self._composite(json.loads(request.content))
        if path.startswith("/sobjects/"):
            return self._sobject(request, path.removeprefix("/sobjects/").strip("/").split("/"))
        return sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    def _query_first(self, soql: str) -> httpx.Response:
        if "FROM" not in soql.upper():
            return sf_error(400, "MALFORMED_QUERY", "unexpected token: <EOF>")
        if "NoSuchField__c" in soql:
            return sf_error(400, "INVALID_FIELD", "No such column 'NoSuchField__c' on entity 'User'.")
        records = [
            {"attributes": {"type": "User", "url": f"{SF_DATA}/sobjects/User/x"}, **record}
            for record in self.query_records.get(soql, [])
        ]
        return self._page(records, total=len(records))

    def _query_next(self, cursor: str) -> httpx.Response:
        remaining = self._cursors.pop(cursor, None)
        if remaining is None:
            return sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(remaining, total=None)

    def _page(self, records: list[dict[str, Any]], total: int | None) -> httpx.Response:
        page, rest = records[: self.page_size], records[self.page_size :]
        body: dict[str, Any] = {"totalSize": total if total is not None else len(records), "done": not rest,
                                "records": page}
        if rest:
            cursor = f"01gFAKE{next(self._ids):08d}-{len(page)}"
            self._cursors[cursor] = rest
            body["nextRecordsUrl"] = f"{SF_DATA}/query/{cursor}"
        return json_response(200, body)

    def _save(self, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
        if sobject.endswith("__e"):
            return {"id": self.new_id("e00"), "success": True, "errors": [
                {"statusCode": "OPERATION_ENQUEUED", "message": "event queued for delivery", "fields": []}
            ]}
        if sobject == "ServicePresenceStatus":
            name = fields.get("DeveloperName")
            if not name:
                return {"success": False, "errors": [
                    {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing",
                     "fields": ["DeveloperName"]}]}
            if any(r.get("DeveloperName") == name for r in self.records.get(sobject, {}).values()):
                return {"success": False, "errors": [
                    {"statusCode": "DUPLICATE_VALUE", "message": "duplicate value found: DeveloperName",
                     "fields": ["DeveloperName"]}]}
        record_id = self.new_id("0N5" if sobject == "ServicePresenceStatus" else "a00")
        self.records.setdefault(sobject, {})[record_id] = dict(fields)
        return {"id": record_id, "success": True, "errors": []}

    def _composite(self, body: dict[str, Any]) -> httpx.Response:
        records = body["records"]
        self.composite_sizes.append(len(records))
        failure = self.composite_failure(records)
        if failure is not None:
            return failure
        if len(records) > 200:
            return sf_error(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records")
        types = {record["attributes"]["type"] for record in records}
        if types & self.SETUP_TYPES and types - self.SETUP_TYPES:
            return sf_error(400, "MIXED_DML_OPERATION", "DML on setup and non-setup objects in one call")
        results = []
        for record in records:
            fields = {k: v for k, v in record.items() if k != "attributes"}
            results.append(self._save(record["attributes"]["type"], fields))
        return json_response(200, results)

    def _sobject(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        sobject = parts[0]
        if request.method == "POST" and len(parts) == 1:
            result = self._save(sobject, json.loads(request.content))
            if not result["success"]:
                error = result["errors"][0]
                return sf_error(400, error["statusCode"], error["message"], error["fields"])
            return json_response(201, result)
        record_id = parts[1] if len(parts) > 1 else ""
        stored = self.records.get(sobject, {})
        if record_id not in stored:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        if request.method == "GET":
            return json_response(200, {"attributes": {"type": sobject}, "Id": record_id, **stored[record_id]})
        if request.method == "PATCH":
            fields = json.loads(request.content)
            if "NoSuchField__c" in fields:
                return sf_error(400, "INVALID_FIELD", "No such column 'NoSuchField__c'", ["NoSuchField__c"])
            stored[record_id].update(fields)
            return httpx.Response(204)
        if request.method == "DELETE":
            del stored[record_id]
            return httpx.Response(204)
        return sf_error(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed")


# ------------------------------------------------------------------------------------------ CXone


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeCxone:
    """CXone per apis.md C1-C4: discovery, OpenID config, token endpoint, admin/real-time data, Agent API."""

    def __init__(self) -> None:
        self.tenant_id = CX_TENANT
        self.client_id = "cx-app-client-id"
        self.client_secret = CX_SECRETS["client_secret"]
        self.access_key_id = "AKIDFAKE1234"
        self.access_key_secret = CX_SECRETS["access_key_secret"]
        self.expires_in = 3600
        self.agents: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self.last_poll_time = "2026-11-25T10:00:00.000Z"
        self.teams = [
            {"teamId": 11, "teamName": "Voice Team A", "isActive": True, "agentCount": 0},
            {"teamId": 12, "teamName": "Voice Team B", "isActive": True, "agentCount": 0},
        ]
        self.team_codes = {11: ["Break", "Lunch", "CRM Work", "ACW"], 12: ["Break", "Lunch", "ACW"]}
        self.logged_in: set[int] = set()
        self.forbidden_agents: set[int] = set()
        self.sessions: dict[str, int] = {}
        self.set_states: list[tuple[int, dict[str, Any]]] = []
        self.valid_tokens: set[str] = set()
        self.valid_refresh_tokens: set[str] = set()
        self.token_forms: list[dict[str, str]] = []
        self.token_auth: list[str] = []
        self.calls: Counter[str] = Counter()
        self.requests: list[httpx.Request] = []
        self.faults = FaultScript()
        self._ids = itertools.count(1)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def credentials(self, **overrides: Any) -> CxoneCredentials:
        values: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": SecretStr(self.client_secret),
            "access_key_id": self.access_key_id,
            "access_key_secret": SecretStr(self.access_key_secret),
        }
        values.update(overrides)
        return CxoneCredentials(**values)

    def add_agents(self, count: int, team_id: int = 11) -> None:
        for _ in range(count):
            agent_id = 1000 + len(self.agents)
            self.agents.append({
                "agentId": agent_id, "userName": f"agent{agent_id}@example.com", "firstName": "A",
                "lastName": str(agent_id), "emailAddress": f"agent{agent_id}@example.com", "isActive": True,
                "teamId": team_id, "teamName": "Voice Team A", "federatedId": None,
                "lastUpdated": "2026-11-25T09:00:00.000Z",
            })
            self.logged_in.add(agent_id)

    def agent_team(self, agent_id: int) -> int:
        return next(agent["teamId"] for agent in self.agents if agent["agentId"] == agent_id)

    def end_sessions(self) -> None:
        self.sessions.clear()

    @property
    def token_requests(self) -> int:
        return len(self.token_forms)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls[f"{request.method} {request.url.path}"] += 1
        self.requests.append(request)
        scripted = self.faults.take(request)
        if scripted is not None:
            return scripted
        host, path = request.url.host, request.url.path
        if host == "cxone.niceincontact.com" and path == "/.well-known/cxone-configuration":
            if request.url.params.get("tenantId") != self.tenant_id:
                return json_response(404, {"error": "tenant not found"})
            return json_response(200, {
                "private": False, "ui_endpoint": CX_AUTH, "auth_endpoint": CX_AUTH, "api_endpoint": CX_API,
                "area": "na1", "cluster": "B32", "domain": "niceincontact.com", "tenantId": self.tenant_id,
            })
        if f"https://{host}" == CX_AUTH and path == "/.well-known/openid-configuration":
            return json_response(200, {"issuer": CX_AUTH, "token_endpoint": f"{CX_AUTH}/auth/token"})
        if f"https://{host}" == CX_AUTH and path == "/auth/token":
            return self._token(request)
        if f"https://{host}" == CX_API and path.startswith(CX_BASE):
            return self._api(request, path.removeprefix(CX_BASE))
        return httpx.Response(404, text="no such host or path")

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = form_of(request)
        self.token_forms.append(form)
        self.token_auth.append(request.headers.get("Authorization", ""))
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return json_response(401, {"error": "invalid_client"})
        grant = form.get("grant_type")
        if grant == "password":
            if (form.get("username"), form.get("password")) != (self.access_key_id, self.access_key_secret):
                return json_response(400, {"error": "invalid_grant"})
        elif grant == "refresh_token":
            if form.get("refresh_token") not in self.valid_refresh_tokens:
                return json_response(400, {"error": "invalid_grant"})
        else:
            return json_response(400, {"error": "unsupported_grant_type"})
        number = next(self._ids)
        access, refresh = f"cx-access-{number:05d}", f"cx-refresh-{number:05d}"
        self.valid_tokens.add(access)
        self.valid_refresh_tokens.add(refresh)
        id_token = jwt.encode({"tenantId": self.tenant_id, "sub": "user:1"}, "not-verified-by-clients-0123456789abcdef",
                              algorithm="HS256")
        return json_response(200, {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in,
                                   "refresh_token": refresh, "id_token": id_token})

    def _page(self, key: str, items: list[dict[str, Any]], request: httpx.Request,
              extra: dict[str, Any] | None = None) -> httpx.Response:
        skip = int(request.url.params.get("skip", 0))
        top = int(request.url.params.get("top", 100))
        if not items:
            return httpx.Response(204)
        return json_response(200, {"totalRecords": len(items), "_links": {"self": str(request.url)},
                                   key: items[skip : skip + top], **(extra or {})})

    def _api(self, request: httpx.Request, path: str) -> httpx.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
            return json_response(401, {"error": "invalid_token"})
        method, params = request.method, request.url.params
        if method == "GET" and path == "/agents":
            agents = self.agents
            if "isActive" in params:
                agents = [a for a in agents if a["isActive"] == (params["isActive"] == "true")]
            return self._page("agents", agents, request, {"lastPollTime": self.last_poll_time})
        if method == "GET" and path == "/agents/states":
            return self._page("agentStates", self.states, request, {"lastPollTime": self.last_poll_time})
        if method == "GET" and path == "/teams":
            return self._page("teams", self.teams, request)
        if method == "GET" and path.startswith("/teams/") and path.endswith("/unavailable-codes"):
            team_id = int(path.split("/")[2])
            if team_id not in self.team_codes:
                return json_response(404, {"message": "team not found"})
            return json_response(200, {"unavailableCodes": [
                {"outStateId": i, "outStateName": name, "isAcw": name == "ACW", "isActive": True}
                for i, name in enumerate(self.team_codes[team_id], start=1)
            ]})
        if method == "GET" and path == "/unavailable-codes":
            names = ["Break", "Lunch", "CRM Work", "ACW"]
            return json_response(200, {"totalRecords": 4, "unavailableCodes": [
                {"id": i, "name": n, "isActive": True, "isACW": n == "ACW", "agentTimeout": None}
                for i, n in enumerate(names, start=1)
            ]})
        if method == "POST" and path == "/agent-sessions/join":
            agent_id = json.loads(request.content)["asAgentId"]
            if agent_id in self.forbidden_agents:
                return json_response(403, {"message": "not permitted"})
            if agent_id not in self.logged_in:
                return json_response(409, {"message": "agent has no session"})
            session_id = f"sess-{next(self._ids)}"
            self.sessions[session_id] = agent_id
            return json_response(202, {"sessionId": session_id})
        if method == "POST" and path.startswith("/agent-sessions/") and path.endswith("/state"):
            session_id = path.split("/")[2]
            if session_id not in self.sessions:
                return json_response(404, {"message": "session not found"})
            agent_id = self.sessions[session_id]
            body = json.loads(request.content)
            reason = body.get("reason")
            if reason is not None and reason not in self.team_codes[self.agent_team(agent_id)]:
                return json_response(400, {"message": f"invalid reason {reason}"})
            self.set_states.append((agent_id, body))
            return httpx.Response(202)
        if method == "POST" and path.startswith("/agents/") and path.endswith("/logout"):
            agent_id = int(path.split("/")[2])
            self.logged_in.discard(agent_id)
            self.sessions = {s: a for s, a in self.sessions.items() if a != agent_id}
            return httpx.Response(202)
        return json_response(404, {"message": "not found"})


# ------------------------------------------------------------------------------------------ fixtures


@dataclass
class SleepRecorder:
    """A RetryPolicy.sleep that records the delays instead of waiting."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def retry(sleeps: SleepRecorder) -> RetryPolicy:
    """Retries that never wait, with jitter pinned to its ceiling so delays are predictable."""
    return RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, sleep=sleeps, random=lambda: 1.0)


@pytest.fixture(scope="session")
def rsa_key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private_pem, public_pem


@pytest.fixture
def salesforce(rsa_key_pair: tuple[str, str]) -> FakeSalesforce:
    return FakeSalesforce(*rsa_key_pair)


@pytest.fixture
def cxone() -> FakeCxone:
    return FakeCxone()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
