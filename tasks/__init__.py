"""The work, as plain async functions over a `Context` (config, connectors, store): onboarding steps, the
sync tick, windows and reconcile, validation, a supervisor's `set`, the demo's day and checks. No Prefect
flows or tasks here (they are in `flows/`). May import connectors, engine, models and (the demo)
emulators; never flows.
"""
