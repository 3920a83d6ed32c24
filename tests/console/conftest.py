"""Fixtures for the console channel's tests (helpers in `tests/console/support.py`)."""

from tests.console.support import broker, broker_factory

__all__ = ["broker", "broker_factory"]
