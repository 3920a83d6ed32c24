"""The Salesforce emulator: `create_app(options)` builds it; `app.state.emulator` drives it in-process."""

from presence_sync.emulators.salesforce.app import create_app
from presence_sync.emulators.salesforce.emulator import OrgUpdate, SalesforceEmulator, UserInfo
from presence_sync.emulators.salesforce.errors import error_body
from presence_sync.emulators.salesforce.options import SalesforceEmulatorOptions

__all__ = ["OrgUpdate", "SalesforceEmulator", "SalesforceEmulatorOptions", "UserInfo", "create_app", "error_body"]
