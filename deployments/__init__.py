"""Deployments of the flows: serving prefect.yaml's deployments locally (`presence-sync serve`), and the
production recipe (README.md: a Prefect server on PostgreSQL, a work pool and worker, secrets as blocks).
"""
