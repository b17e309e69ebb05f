"""One exception tree for ingestion, so a job can say clearly why a file failed."""

from __future__ import annotations


class IngestError(Exception):
    """A file cannot be ingested; the message is shown to the user as the job error."""

    code = "ingest:error"


class UnsupportedFormat(IngestError):
    code = "format:unsupported"


class UnreadableFile(IngestError):
    code = "file:unreadable"


class EmptyFile(IngestError):
    code = "file:empty"


class UnsafeFile(IngestError):
    """Refused for safety: decompression bomb, XML entities, oversize line."""

    code = "file:unsafe"


class NoUsableTable(IngestError):
    code = "dump:no-table"


class NoIdentityColumns(IngestError):
    """No column maps to any identity field: every row would be quarantined."""

    code = "mapping:no-identity"


class JobCancelled(IngestError):
    """Someone asked the job to stop; it stopped at a stage boundary and left nothing."""

    code = "job:cancelled"


class LeaseLost(Exception):
    """Another worker holds this job now (ours timed out): stop and touch nothing of it."""
