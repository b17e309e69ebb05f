"""Ingestion: land a file, read it, stage it raw, map, normalize, dedup, publish."""
