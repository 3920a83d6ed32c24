"""The config file of one contact center: pydantic models, validation, the loader and a renderer.

Example:
    from presence_sync.models.config import load_config
    config = load_config("examples/demo-contact-center.yaml")   # raises ConfigError on any problem
    config.presence_rules[0].publisher[1].acd                    # AcdState.parse("Unavailable: Break")

The rule rows' ACD states are the engine's `AcdState` (presence_sync.engine.states owns that syntax).

Every problem is reported as `path: problem -> fix` (e.g. `rule.subscriber[3].acd: 'ACW' is
system-managed and can't be a subscriber target -> ...`), with the YAML line when loaded from a file.
Secrets are `SecretStr` (models/secrets.py: `${ENV_VAR}` and `prefect-secret:<block>` references).
"""

from presence_sync.models.config.base import (
    DEVELOPER_NAME_MAX_LENGTH,
    derive_developer_name,
    developer_name_problem,
    suggest_developer_name,
)
from presence_sync.models.config.connections import (
    SALESFORCE_LOGIN_URLS,
    ClientCredentialsAuth,
    CxoneConfig,
    JwtAuth,
    PasswordAuth,
    SalesforceAuth,
    SalesforceConfig,
    SalesforceEnvironment,
)
from presence_sync.models.config.contact_center import (
    ALL_STATUSES,
    ConnectedAppConfig,
    LinkOverride,
    PresenceRuleConfig,
    PresenceStatusConfig,
    ProfileConfig,
    PublisherRow,
    StatusOption,
    SubscriberRow,
)
from presence_sync.models.config.document import PresenceSyncConfig
from presence_sync.models.config.loader import load_config, parse_config
from presence_sync.models.config.render import render_emulator_config_yaml, write_emulator_config
from presence_sync.models.config.console import ConsoleChannel, ConsoleSettings
from presence_sync.models.config.sync import (
    DEFAULT_STORE_URL,
    AlertSettings,
    ConflictPolicy,
    SharedBudgetSettings,
    SyncSettings,
)
from presence_sync.models.errors import ConfigError, ConfigProblem, SecretReferenceError

__all__ = [
    "ALL_STATUSES",
    "DEFAULT_STORE_URL",
    "DEVELOPER_NAME_MAX_LENGTH",
    "SALESFORCE_LOGIN_URLS",
    "ClientCredentialsAuth",
    "ConfigError",
    "ConfigProblem",
    "ConflictPolicy",
    "ConnectedAppConfig",
    "CxoneConfig",
    "JwtAuth",
    "LinkOverride",
    "PasswordAuth",
    "PresenceRuleConfig",
    "PresenceStatusConfig",
    "PresenceSyncConfig",
    "ProfileConfig",
    "PublisherRow",
    "SalesforceAuth",
    "SalesforceConfig",
    "SalesforceEnvironment",
    "SecretReferenceError",
    "StatusOption",
    "SubscriberRow",
    "SyncSettings",
    "SharedBudgetSettings",
    "AlertSettings",
    "ConsoleChannel",
    "ConsoleSettings",
    "derive_developer_name",
    "developer_name_problem",
    "load_config",
    "parse_config",
    "render_emulator_config_yaml",
    "suggest_developer_name",
    "write_emulator_config",
]
