"""The Salesforce emulator: `create_app(options)` builds it; `app.state.emulator` drives it in-process."""

from emulators.salesforce.app import create_app
from emulators.salesforce.emulator import OrgUpdate, SalesforceEmulator, UserInfo
from emulators.salesforce.errors import error_body
from emulators.salesforce.options import SalesforceEmulatorOptions

__all__ = ["OrgUpdate", "SalesforceEmulator", "SalesforceEmulatorOptions", "UserInfo", "create_app", "error_body"]
