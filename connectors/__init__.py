"""httpx clients for Salesforce and NICE CXone: credentials, auth, retries, pagination, typed errors,
and the typed records of what an agent shows now in each system (`presence`). May import the engine
(for its state vocabulary) and nothing else of presence_sync; never Prefect. The config's connection
sections extend the credentials models below.

    from presence_sync.connectors import SalesforceCredentials, CxoneCredentials
    async with sf_creds.get_client() as sf, cx_creds.get_client() as cx:
        ...
"""

from presence_sync.connectors.cxone import AgentStatesPage, CxoneClient, CxoneEndpoints
from presence_sync.connectors.cxone_auth import CxoneCredentials
from presence_sync.connectors.errors import (
    AgentLoggedOut,
    ApiError,
    AuthenticationError,
    BodyTooLarge,
    ConnectorError,
    DeadlineExceeded,
    HostUnreachable,
    DuplicateValue,
    InvalidClient,
    InvalidCredentials,
    InvalidField,
    InvalidReason,
    MalformedQuery,
    MalformedResponse,
    NotFound,
    NotPermitted,
    RateLimited,
    RequestLimitExceeded,
    RequiredFieldMissing,
    SessionRejected,
    TransientError,
    UnsupportedGrant,
    ValidationRuleFailed,
    is_transient,
)
from presence_sync.connectors.presence import (
    CxoneAgentState,
    PresenceSpell,
    RecordError,
    Records,
    current_spell,
    current_spells,
    cxone_state_from_api,
    spell_pages,
)
from presence_sync.connectors.retry import RetryPolicy
from presence_sync.connectors.salesforce import (
    ApiUsage,
    PresenceCommand,
    SalesforceClient,
    SalesforceIdentity,
    SaveError,
    SaveResult,
)
from presence_sync.connectors.salesforce_auth import (
    ClientCredentialsFlow,
    JwtFlow,
    PasswordFlow,
    SalesforceCredentials,
    SalesforceFlow,
)

__all__ = [
    "AgentLoggedOut",
    "AgentStatesPage",
    "ApiError",
    "ApiUsage",
    "AuthenticationError",
    "BodyTooLarge",
    "ClientCredentialsFlow",
    "ConnectorError",
    "CxoneAgentState",
    "CxoneClient",
    "CxoneCredentials",
    "CxoneEndpoints",
    "DeadlineExceeded",
    "HostUnreachable",
    "DuplicateValue",
    "InvalidClient",
    "InvalidCredentials",
    "InvalidField",
    "InvalidReason",
    "JwtFlow",
    "MalformedQuery",
    "MalformedResponse",
    "NotFound",
    "NotPermitted",
    "PasswordFlow",
    "PresenceCommand",
    "PresenceSpell",
    "RateLimited",
    "RecordError",
    "Records",
    "RequestLimitExceeded",
    "RequiredFieldMissing",
    "RetryPolicy",
    "SalesforceClient",
    "SalesforceCredentials",
    "SalesforceFlow",
    "SalesforceIdentity",
    "SaveError",
    "SaveResult",
    "SessionRejected",
    "TransientError",
    "UnsupportedGrant",
    "ValidationRuleFailed",
    "current_spell",
    "current_spells",
    "cxone_state_from_api",
    "is_transient",
    "spell_pages",
]
