"""The columnar store: ClickHouse SQL through clickhouse-connect (chDB embedded or a server)."""

from recordbank.store.client import Store, StoreBusy, open_store

__all__ = ["Store", "StoreBusy", "open_store"]
