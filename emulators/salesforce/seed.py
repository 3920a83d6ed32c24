"""What exists in the org before onboarding (product.md, "Seeded vs onboarded").

Channels, the three profiles (each owning a permission set), the integration user, two supervisors
and one user per demo agent who has one; no presence statuses (onboarding creates them). The
credentials derive from the seed, so the same seed always yields the same org.
"""

from __future__ import annotations

import random
import string
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from presence_sync.emulators.demo_center import (
    ADMIN_PROFILE,
    AGENT_PROFILE,
    CHANNELS,
    SALESFORCE_INTEGRATION_USERNAME,
    SUPERVISOR_PROFILE,
    demo_agents,
)
from presence_sync.emulators.faults import EmulatorClock
from presence_sync.emulators.salesforce.ids import BASE62, IdFactory
from presence_sync.emulators.salesforce.options import SalesforceEmulatorOptions
from presence_sync.emulators.salesforce.org import ConnectedApp, Login, OrgSettings, SalesforceOrg

SUPERVISOR_COUNT = 2


@lru_cache(maxsize=1)
def jwt_key_pair() -> tuple[str, str]:
    """The JWT app certificate's RSA key pair as PEM (private PKCS#8, public SPKI).

    Generated once per process: key generation is the slowest part of building an app, and the key
    is exposed through the credentials endpoint anyway.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private_pem, public_pem


def _chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def seed_org(options: SalesforceEmulatorOptions, seed: int, clock: EmulatorClock) -> SalesforceOrg:
    rng = random.Random(seed)
    ids = IdFactory(pod="5" + rng.choice(string.ascii_lowercase))
    settings = OrgSettings(
        block_username_password_flow=options.block_username_password_flow,
        api_daily_limit=options.api_daily_limit,
        mfa_users={u.lower() for u in options.mfa_users},
        connected_app_creation_enabled=options.connected_app_creation_enabled,
    )
    org = SalesforceOrg(ids.make("00D", rng.randrange(62**6)), ids, clock, settings)

    for channel in CHANNELS:
        org.create_channel(channel.developer_name, channel.label, channel.related_entity)
    for profile in (AGENT_PROFILE, SUPERVISOR_PROFILE, ADMIN_PROFILE):
        org.create_profile(profile)

    integration_login = Login(
        password="Sync-" + _chars(rng, string.ascii_letters + string.digits, 12),
        security_token=_chars(rng, string.ascii_letters + string.digits, 24),
    )
    integration = org.create_user(
        SALESFORCE_INTEGRATION_USERNAME, SALESFORCE_INTEGRATION_USERNAME, "Integration User", ADMIN_PROFILE,
        integration_login,
    )
    for i in range(1, SUPERVISOR_COUNT + 1):
        email = f"supervisor{i}@example.com"
        org.create_user(email, email, f"Supervisor {i}", SUPERVISOR_PROFILE)
    for agent in demo_agents(options.agents):
        if agent.has_salesforce_user:
            org.create_user(agent.email, agent.email, f"{agent.first_name} {agent.last_name}", AGENT_PROFILE)

    private_pem, public_pem = jwt_key_pair()
    admin = org.profile_by_name(ADMIN_PROFILE)
    assert admin is not None
    org.connected_app = ConnectedApp(
        client_id="3MVG9" + _chars(rng, BASE62 + "._", 80),
        client_secret=_chars(rng, "0123456789ABCDEF", 64),
        jwt_private_key_pem=private_pem,
        jwt_public_key_pem=public_pem,
        run_as_user_id=integration["Id"],
        preapproved_profile_ids={admin["Id"]},
    )
    return org
