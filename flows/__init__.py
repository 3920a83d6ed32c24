"""The Prefect flows (onboard, sync, reconcile, refresh-users, validate, set, demo) and the Prefect tasks they
use (`*_tasks.py`): thin compositions of `tasks/` with artifacts and states. May import tasks, models,
connectors, engine and (the demo) emulators; only the CLI and deployments import flows.
"""
