"""Credits: pricing, and the append-only ledger with holds and settlements."""
