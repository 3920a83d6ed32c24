"""The data a contact center keeps: its config (pydantic, `models.config`; the rule rows use the engine's
state vocabulary), secret references (`${ENV}` or a Prefect Secret block), and the state store
(SQLModel on SQLite or PostgreSQL, `models.store`). May import the engine; never connectors, tasks or flows.
"""
