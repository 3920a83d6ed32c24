"""NICE CXone emulator: `create_app(CxoneEmulatorOptions(...))`; state at `app.state.emulator`."""

from emulators.cxone.app import create_app
from emulators.cxone.emulator import CxoneEmulator
from emulators.cxone.errors import error_body
from emulators.cxone.options import CxoneEmulatorOptions

__all__ = ["CxoneEmulator", "CxoneEmulatorOptions", "create_app", "error_body"]
