"""The relational DB (SQLite by default, PostgreSQL in production): files, jobs, accounts."""
