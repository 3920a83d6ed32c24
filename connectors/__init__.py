"""httpx clients for Salesforce and NICE CXone: auth, retries, pagination, typed errors. No Prefect here.

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
    "RateLimited",
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
    "is_transient",
]
