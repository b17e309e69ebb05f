"""The usage log: one row per API request."""
