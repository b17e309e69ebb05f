"""The `recordbank` command: ingestion, accounts and the API server."""

from recordbank.cli import accounts, serve, sources, worker  # noqa: F401 - registers their commands
from recordbank.cli.ingest import app

__all__ = ["app"]
