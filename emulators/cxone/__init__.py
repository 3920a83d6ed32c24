"""NICE CXone emulator: `create_app(CxoneEmulatorOptions(...))`; state at `app.state.emulator`."""

from presence_sync.emulators.cxone.app import create_app
from presence_sync.emulators.cxone.emulator import CxoneEmulator
from presence_sync.emulators.cxone.errors import error_body
from presence_sync.emulators.cxone.options import CxoneEmulatorOptions

__all__ = ["CxoneEmulator", "CxoneEmulatorOptions", "create_app", "error_body"]
