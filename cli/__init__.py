"""The `presence-sync` command line: one module per command group, each running the flow its deployment
runs (or, for read-only commands, reading the store without Prefect) and printing what people read.

`main.py` is the entry point; `output.py` the exit codes and shared printing; `prefect_api.py` which
Prefect API a command uses and the quiet defaults; `server.py` the local Prefect server.
The top layer: may import any part of presence_sync; nothing imports it (bar the entry point).
"""
