"""httpx clients for Salesforce and NICE CXone: auth, retries, pagination, typed errors, and the typed
records of what an agent shows now in each system (`presence`). May import the engine (for its state
vocabulary) and nothing else of presence_sync; never Prefect.

    from presence_sync.connectors import SalesforceCredentials, CxoneCredentials
    async with sf_creds.get_client() as sf, cx_creds.get_client() as cx:
        ...
"""

from presence_sync.connectors.cxone import AgentStatesPage, CxoneClient
from presence_sync.connectors.cxone_auth import CxoneCredentials, CxoneEndpoints
from presence_sync.connectors.errors import (
    AgentLoggedOut,
    ApiError,
    AuthenticationError,
    ConnectorError,
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
from presence_sync.connectors.salesforce import ApiUsage, PresenceCommand, SalesforceClient, SaveError, SaveResult
from presence_sync.connectors.salesforce_auth import SalesforceCredentials, SalesforceIdentity

__all__ = [
    "AgentLoggedOut",
    "AgentStatesPage",
    "ApiError",
    "ApiUsage",
    "AuthenticationError",
    "ConnectorError",
    "CxoneAgentState",
    "CxoneClient",
    "CxoneCredentials",
    "CxoneEndpoints",
    "DuplicateValue",
    "InvalidClient",
    "InvalidCredentials",
    "InvalidField",
    "InvalidReason",
    "MalformedQuery",
    "MalformedResponse",
    "NotFound",
    "NotPermitted",
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
