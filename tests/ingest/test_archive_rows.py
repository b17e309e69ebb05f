"""Archive members are numbered as one file: the second member's source_row starts after the
first member's last row, in records, in the quarantine and in the rejects CSV. The offset is a
bound parameter, so every member runs the same transform text."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from recordbank.ingest import rejects
from recordbank.ingest.pipeline import IngestOptions, Ingestor

CSV_MEMBER = (
    "name,email,phone,company\n"
    "Ann Lee,ann@example.com,+14155550100,Acme\n"
    ",,,Ghost\n"  # nobody: rejected, archive row 1
    "Bob Ray,bob@example.com,+14155550101,Beta\n"
)
JSONL_MEMBER = "".join(json.dumps(r) + "\n" for r in [
    {"name": "Cy Day", "email": "cy@example.com", "note": "first"},
    {"name": "Dee Fox", "email": "dee@example.com", "note": "second"},
    {"name": "", "email": "", "note": "phantom"},  # nobody: rejected, archive row 5
])


def _zip(path: Path, members: list[tuple[str, str]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members:
            zf.writestr(name, text)
    return path


def _records(runtime: Any, job_id: int) -> list[tuple[Any, ...]]:
    return runtime.store.rows("SELECT source_row, email FROM records "
                              "WHERE job_id = {j:UInt64} ORDER BY source_row", {"j": job_id})


def _rejected(runtime: Any, job_id: int) -> list[int]:
    rows = runtime.store.rows("SELECT source_row FROM quarantine "
                              "WHERE job_id = {j:UInt64} ORDER BY source_row", {"j": job_id})
    return [r[0] for r in rows]


def test_a_csv_then_a_jsonl_member_number_rows_continuously(runtime, tmp_path: Path) -> None:
    archive = _zip(tmp_path / "mixed.zip", [("a.csv", CSV_MEMBER), ("b.jsonl", JSONL_MEMBER)])
    result = Ingestor(runtime).ingest(archive, IngestOptions())
    assert result.status == "succeeded", result.error
    assert [f["format"] for f in result.mapping_report["files"]] == ["csv", "jsonl"]
    assert (result.rows_read, result.inserted, result.duplicates, result.quarantined) == (
        6, 4, 0, 2)
    assert _records(runtime, result.job_id) == [
        (0, "ann@example.com"), (2, "bob@example.com"),  # the CSV member: rows 0-2
        (3, "cy@example.com"), (4, "dee@example.com")]  # the JSONL member: rows 3-5
    body = b"".join(rejects.stream(runtime.store, result.job_id)).decode()
    got = [(int(r["source_row"]), r["reasons"], json.loads(r["raw"]))
           for r in csv.DictReader(io.StringIO(body))]
    assert got == [
        (1, "identity:missing", {"name": "", "email": "", "phone": "", "company": "Ghost"}),
        (5, "identity:missing", {"name": "", "email": "", "note": "phantom"}),
    ]


def test_every_member_runs_the_same_transform_text(runtime, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    second = CSV_MEMBER.replace("ann@", "ann2@").replace("bob@", "bob2@")
    archive = _zip(tmp_path / "two.zip", [("a.csv", CSV_MEMBER), ("b.csv", second)])
    store = runtime.store
    real = store.command
    inserts: list[tuple[str, dict[str, Any]]] = []

    def recording(sql: str, parameters: dict[str, Any] | None = None,
                  settings: dict[str, Any] | None = None) -> Any:
        if sql.startswith("INSERT INTO clean_"):
            inserts.append((sql, dict(parameters or {})))
        return real(sql, parameters=parameters, settings=settings)

    monkeypatch.setattr(store, "command", recording)
    result = Ingestor(runtime).ingest(archive, IngestOptions())
    monkeypatch.undo()
    assert result.status == "succeeded", result.error
    assert (result.rows_read, result.inserted, result.quarantined) == (6, 4, 2)
    assert len(inserts) == 2
    (first_sql, first), (second_sql, later) = inserts
    assert first_sql == second_sql
    assert "{row_offset:UInt64}" in first_sql
    assert (first["row_offset"], later["row_offset"]) == (0, 3)
    assert first["path"] != later["path"]
    assert _rejected(runtime, result.job_id) == [1, 4]


def test_a_fallback_in_a_later_member_keeps_the_earlier_rows(runtime, tmp_path: Path) -> None:
    """A JSONL member with a key its first 10,000 records lack is read again the slow way;
    only that member's rows are deleted first (source_row >= its offset, a bound value)."""
    lines = []
    for i in range(10_050):
        rec: dict[str, object] = {"name": f"Person {i}", "email": f"p{i}@example.com"}
        if i == 10_040:
            rec["vip"] = {"level": "gold"}
        lines.append(json.dumps(rec) + "\n")
    archive = _zip(tmp_path / "late.zip", [("a.csv", CSV_MEMBER), ("b.jsonl", "".join(lines))])
    result = Ingestor(runtime).ingest(archive, IngestOptions())
    assert result.status == "succeeded", result.error
    assert (result.rows_read, result.inserted, result.quarantined) == (10_053, 10_052, 1)
    store = runtime.store
    lo, hi, n = store.rows("SELECT min(source_row), max(source_row), count() FROM records "
                           "WHERE email LIKE 'p%@example.com'")[0]
    assert (lo, hi, n) == (3, 10_052, 10_050)
    assert _records(runtime, result.job_id)[:2] == [
        (0, "ann@example.com"), (2, "bob@example.com")]
    assert _rejected(runtime, result.job_id) == [1]
    vip = store.rows("SELECT source_row, metadata FROM records "
                     "WHERE email = 'p10040@example.com'")
    assert vip == [(3 + 10_040, {"vip.level": "gold"})]
