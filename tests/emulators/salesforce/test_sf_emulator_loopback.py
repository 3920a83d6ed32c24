"""Smoke test over real HTTP: the emulator under uvicorn on loopback, driven as a client would."""

from __future__ import annotations

import time

import httpx
import jwt

from presence_sync.emulators.server import RunningServer


def test_a_client_logs_in_onboards_a_status_and_sees_the_applier_act_over_http(loopback_server: RunningServer) -> None:
    port = loopback_server.port
    with httpx.Client(base_url=loopback_server.url, timeout=10) as http:
        http.post("/__emulator/reset")
        creds = http.get("/__emulator/credentials").json()
        assert creds["my_domain_host"] == f"localhost:{port}" and creds["login_host"] == f"127.0.0.1:{port}"
        form = {"grant_type": "password", "client_id": creds["client_id"], "client_secret": creds["client_secret"],
                "username": creds["username"], "password": creds["password"] + creds["security_token"]}
        token = http.post("/services/oauth2/token", data=form).json()
        assert token["instance_url"] == f"http://localhost:{port}"

        assertion = jwt.encode({"iss": creds["client_id"], "sub": creds["username"], "aud": loopback_server.url,
                                "exp": int(time.time()) + 120}, creds["jwt_private_key_pem"], algorithm="RS256")
        by_jwt = http.post(f"{token['instance_url']}/services/oauth2/token",
                           data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
        assert by_jwt.status_code == 200, by_jwt.text

        api = f"{token['instance_url']}/services/data/v62.0"
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        lunch = {"DeveloperName": "Lunch", "MasterLabel": "Lunch"}
        status = http.post(f"{api}/sobjects/ServicePresenceStatus/", json=lunch, headers=auth).json()["id"]
        permission_set = http.get(f"{api}/query", headers=auth, params={
            "q": "SELECT Id FROM PermissionSet WHERE Profile.Name = 'Contact Center Agent'"}).json()["records"][0]["Id"]
        access = {"ParentId": permission_set, "SetupEntityId": status}
        granted = http.post(f"{api}/sobjects/SetupEntityAccess/", json=access, headers=auth)
        assert granted.status_code == 201
        agent = http.get(f"{api}/query", headers=auth, params={
            "q": "SELECT Id FROM User WHERE Username = 'agent1@example.com'"}).json()["records"][0]["Id"]

        published = http.post(f"{api}/sobjects/Presence_Sync_Command__e/", headers=auth,
                              json={"UserId__c": agent, "StatusId__c": status, "CommandId__c": "smoke-1"})
        assert published.status_code == 201 and published.headers["Sforce-Limit-Info"].startswith("api-usage=")
        spells = http.get(f"{api}/query", headers=auth, params={
            "q": "SELECT ServicePresenceStatus.DeveloperName, IsCurrentState FROM UserServicePresence "
                 f"WHERE UserId = '{agent}'"}).json()["records"]
        assert [(r["ServicePresenceStatus"]["DeveloperName"], r["IsCurrentState"]) for r in spells] == [("Lunch", True)]
        assert http.get(f"/__emulator/users/{agent}").json()["presence"] == "Lunch"
