"""Serving the flows as Prefect deployments: `prefect.yaml` read and served locally (`presence-sync serve`),
and the production recipe (deployments/README.md). Imports Prefect and the standard library; it finds
the flows through prefect.yaml's entrypoints, so nothing of presence_sync is imported here.
"""
