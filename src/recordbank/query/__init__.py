"""The query a caller may ask, compiled to bound ClickHouse SQL."""
