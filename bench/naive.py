"""The naive design, for real: one Prefect task per change, sequential requests, no batching, no session cache.

What a first cut of the sync would do with the same APIs: poll once for what changed, then carry each
change in its own Prefect task run, one after the other; a Salesforce presence command is one
`/composite/sobjects` call of one record; a CXone state is a join then a set-state (no session kept
from one change to the next). Plain httpx, nothing of presence-sync: the bench compares it per change
with the sync on the same emulators in the same run (`bench.scale`).

    python -m bench.naive      # then one JSON line on stdin: URLs, credentials, the changes to carry

Runs in a child process with its own throw-away PREFECT_HOME (Prefect's ephemeral server); answers
`{"event": "ready"}` once the flow runs (Prefect's start-up is not counted), then `{"event": "done",
"changes": n, "seconds": s, "requests": r}`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import tempfile
import time
import traceback
from typing import Any

# A throw-away Prefect home (its database holds every task run): the bench names one in its center's folder,
# removed with it, since it ends this process with SIGKILL.
os.environ["PREFECT_HOME"] = os.environ.get("BENCH_NAIVE_PREFECT_HOME") or tempfile.mkdtemp(prefix="presence-sync-bench-naive-")
os.environ.pop("PREFECT_API_URL", None)
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import httpx  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NONE  # noqa: E402

_OUT = sys.stdout


def emit(message: dict[str, Any]) -> None:
    _OUT.write(json.dumps(message) + "\n")
    _OUT.flush()


async def _tokens(init: dict[str, Any]) -> tuple[str, str, str]:
    sf, cx = init["salesforce_credentials"], init["cxone_credentials"]
    async with httpx.AsyncClient(timeout=60) as login:
        basic = base64.b64encode(f"{cx['client_id']}:{cx['client_secret']}".encode()).decode()
        answer = await login.post(
            f"{init['cxone_url']}/auth/token", headers={"Authorization": f"Basic {basic}"},
            data={"grant_type": "password", "username": cx["access_key_id"], "password": cx["access_key_secret"]},
        )
        answer.raise_for_status()
        cx_token = answer.json()["access_token"]
        answer = await login.post(f"{init['salesforce_url']}/services/oauth2/token", data={
            "grant_type": "password", "client_id": sf["client_id"], "client_secret": sf["client_secret"],
            "username": sf["username"], "password": sf["password"] + sf["security_token"],
        })
        answer.raise_for_status()
        token = answer.json()
    return cx_token, token["access_token"], token["instance_url"]


@task(name="carry-one-change", cache_policy=NONE, persist_result=False)
async def carry(http: httpx.AsyncClient, change: dict[str, Any], sf_base: str, cx_base: str,
                sf_auth: str, cx_auth: str) -> int:
    """One change to the other side: 1 request towards Salesforce, a join and a state towards CXone."""
    if change["to"] == "salesforce":
        body = {"allOrNone": False, "records": [{
            "attributes": {"type": "Presence_Sync_Command__e"}, "UserId__c": change["user_id"],
            "StatusId__c": change["status_id"], "CommandId__c": f"naive-{time.monotonic_ns()}", "Reason__c": "naive",
        }]}
        (await http.post(f"{sf_base}/composite/sobjects", json=body, headers={"Authorization": sf_auth})).raise_for_status()
        return 1
    joined = await http.post(f"{cx_base}/agent-sessions/join", json={"asAgentId": change["agent_id"]},
                             headers={"Authorization": cx_auth})
    joined.raise_for_status()
    session = joined.json()["sessionId"]
    answer = await http.post(f"{cx_base}/agent-sessions/{session}/state", json=change["target"],
                             headers={"Authorization": cx_auth})
    answer.raise_for_status()
    return 2


@flow(name="naive-sync", persist_result=False)
async def naive_sync(init: dict[str, Any]) -> dict[str, Any]:
    cx_token, sf_token, instance = await _tokens(init)
    sf_base = f"{instance}/services/data/{init['salesforce_api_version']}"
    cx_base = f"{init['cxone_url']}/incontactapi/services/{init['cxone_api_version']}"
    emit({"event": "ready"})
    go = sys.stdin.readline()  # the bench makes the changes, then says go
    if not go:
        return {}
    started = time.monotonic()
    requests = 0
    async with httpx.AsyncClient(timeout=60) as http:
        # The poll: one read per system finds the changes (as the sync's does); the naive part is what follows.
        (await http.get(f"{cx_base}/agents/states", headers={"Authorization": f"Bearer {cx_token}"},
                        params={"updatedSince": init["cx_since"], "skip": "0", "top": "10000"})).raise_for_status()
        (await http.get(f"{sf_base}/query", headers={"Authorization": f"Bearer {sf_token}"},
                        params={"q": init["spell_query"]})).raise_for_status()
        requests += 2
        for change in init["changes"]:
            requests += await carry(http, change, sf_base, cx_base, f"Bearer {sf_token}", f"Bearer {cx_token}")
    return {"changes": len(init["changes"]), "seconds": time.monotonic() - started, "requests": requests}


def main() -> int:
    global _OUT
    _OUT, sys.stdout = sys.stdout, sys.stderr
    try:
        init = json.loads(sys.stdin.readline())
        result = asyncio.run(naive_sync(init))
        emit({"event": "done", **result})
    except BaseException as error:  # reported to the bench
        emit({"event": "error", "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
