"""Test-session set-up shared by every test.

Prefect reads its settings at import, so PREFECT_HOME points at a throw-away folder and
PREFECT_API_URL is unset before anything imports prefect: tests never touch a developer's Prefect
profile or server. Only tests that use the `prefect_harness` fixture start Prefect's ephemeral API.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ["PREFECT_HOME"] = _prefect_home = tempfile.mkdtemp(prefix="presence-sync-prefect-")
atexit.register(shutil.rmtree, _prefect_home, ignore_errors=True)  # one per test process: none left in /tmp
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_API_KEY", None)
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests draw the same examples on every run (CI must not pass or fail by luck); to search
# further, HYPOTHESIS_PROFILE=explore draws new ones each run (add --hypothesis-seed=N to replay one).
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def prefect_harness():
    """One ephemeral Prefect API per test worker, shared by every test that needs Prefect."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
