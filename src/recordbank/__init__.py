"""recordbank: ingest messy person/contact records into one clean master table."""

__version__ = "0.1.0"
