"""The `presence-sync` command line (typer): one module per command, each running the same flow its
deployment runs, and printing its outcome for a person. The top layer: may import any part of
presence_sync; nothing imports it (bar the entry point).
"""
