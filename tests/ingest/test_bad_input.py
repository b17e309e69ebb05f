"""Bad input ends in a clear job error or row-level quarantine, never a crash or a hang, and
the outcome for a file is the documented one (docs/formats.md, "Bad input")."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from pathlib import Path

from formats_fixture import HEADER, ROWS, write_csv

from recordbank.ingest.jobs import get_job
from recordbank.ingest.pipeline import IngestOptions, Ingestor, IngestResult


def _ingest(runtime, path: Path, **opts) -> IngestResult:  # type: ignore[no-untyped-def]
    return Ingestor(runtime).ingest(path, IngestOptions(**opts))


def _assert_failed_cleanly(runtime, result: IngestResult, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert result.status == "failed"
    assert result.error and all(w.lower() in result.error.lower() for w in words), result.error
    job = get_job(runtime.engine, result.job_id)
    assert job is not None and job.status == "failed" and job.error == result.error
    # whole file rolled back: nothing stored, no work tables left behind
    assert runtime.store.scalar("SELECT count() FROM records WHERE job_id = {j:UInt64}",
                                {"j": result.job_id}) == 0
    assert runtime.store.scalar("SELECT count() FROM quarantine WHERE job_id = {j:UInt64}",
                                {"j": result.job_id}) == 0
    left = runtime.store.scalar(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() AND "
        "(name = {a:String} OR name = {b:String})",
        {"a": f"clean_{result.job_id}", "b": f"stg_{result.job_id}"})
    assert left == 0


def test_empty_file(runtime, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    _assert_failed_cleanly(runtime, _ingest(runtime, path), "empty")


def test_header_only(runtime, tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text(",".join(HEADER) + "\n", encoding="utf-8")
    _assert_failed_cleanly(runtime, _ingest(runtime, path), "no data rows")


def test_binary_junk(runtime, tmp_path: Path) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(os.urandom(64 * 1024))
    result = _ingest(runtime, path)
    _assert_failed_cleanly(runtime, result)
    assert result.error_code == "format:unsupported"


def test_truncated_gzip(runtime, tmp_path: Path) -> None:
    data = gzip.compress(write_csv(tmp_path / "p.csv").read_bytes() * 200)
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    result = _ingest(runtime, path)
    _assert_failed_cleanly(runtime, result)
    assert result.error_code == "file:unreadable"


def test_zip_bomb(runtime, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.csv", b"a,b\n" + b"0" * (300 * 1024 * 1024))
    path = tmp_path / "bomb.zip"
    path.write_bytes(buf.getvalue())
    result = _ingest(runtime, path)
    _assert_failed_cleanly(runtime, result)
    assert result.error_code == "file:unsafe"


def test_xml_entity_bomb_and_external_entity(runtime, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
                    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>\n'
                    "<r><p><name>&c;</name></p><p><name>x</name></p></r>\n")
    result = _ingest(runtime, bomb)
    _assert_failed_cleanly(runtime, result)
    assert result.error_code == "file:unsafe"
    xxe = tmp_path / "xxe.xml"
    xxe.write_text('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM '
                   '"file:///etc/passwd">]>\n<r><p><name>&x;</name></p>'
                   "<p><name>y</name></p></r>\n")
    result = _ingest(runtime, xxe)
    _assert_failed_cleanly(runtime, result)
    assert "root:" not in (result.error or "")


def test_xlsx_with_only_hidden_and_empty_sheets(runtime, tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "Empty"
    hidden = wb.create_sheet("Hidden")
    hidden.append(HEADER)
    hidden.append(ROWS[0])
    hidden.sheet_state = "hidden"
    path = tmp_path / "hidden.xlsx"
    wb.save(path)
    result = _ingest(runtime, path)
    _assert_failed_cleanly(runtime, result, "hidden")


def test_dump_without_usable_table(runtime, tmp_path: Path) -> None:
    path = tmp_path / "orders.sql"
    path.write_text("-- MySQL dump 10.13\nCREATE TABLE `orders` (`id` int, `amount` int);\n"
                    "INSERT INTO `orders` VALUES (1, 2), (3, 4);\n")
    result = _ingest(runtime, path)
    _assert_failed_cleanly(runtime, result, "orders")
    assert result.error_code == "dump:no-table"


def test_invalid_utf8_mid_file_keeps_rows(runtime, tmp_path: Path) -> None:
    good = write_csv(tmp_path / "p.csv").read_bytes()
    filler = b"".join(f"{i},A{i},B,a{i}@example.com,,US,2024-01-01,1,x\n".encode()
                      for i in range(100, 40_000))
    path = tmp_path / "badutf8.csv"
    path.write_bytes(good + filler + b"9,Bad\xff\xfeName,Z,bad@example.com,,US,,1,x\n")
    result = _ingest(runtime, path)
    assert result.status == "succeeded", result.error
    assert result.rows_read == 6 + 39_900 + 1
    assert result.rows_read == result.inserted + result.duplicates + result.quarantined
    name = runtime.store.scalar("SELECT name FROM records WHERE email = 'bad@example.com'")
    assert name == "Bad\ufffd\ufffdName Z"
    notes = result.mapping_report["files"][0]["detection"]
    assert any("invalid UTF-8" in n for n in notes)


def test_ragged_rows_lose_nothing(runtime, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(
        "name,email,phone\n"
        "Ann Lee,ann@example.com,+14155550100\n"
        "Bo Chan,bo@example.com\n"  # short
        "Cy Day,cy@example.com,+14155550101,extra1,extra2\n",  # long
        encoding="utf-8")
    result = _ingest(runtime, path)
    assert result.status == "succeeded", result.error
    assert (result.rows_read, result.inserted) == (3, 3)
    rows = dict(runtime.store.rows(
        "SELECT name, (validation_errors, metadata) FROM records ORDER BY source_row"))
    assert "row:ragged" not in rows["Ann Lee"][0]
    assert "row:ragged" in rows["Bo Chan"][0]
    assert "row:ragged" in rows["Cy Day"][0]
    assert rows["Cy Day"][1] == {"_extra_1": "extra1", "_extra_2": "extra2"}


def test_a_50_mb_line(runtime, tmp_path: Path) -> None:
    path = tmp_path / "longline.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("name,email,notes\n")
        fh.write("Ann Lee,ann@example.com,short\n")
        fh.write("Bo Chan,bo@example.com," + "x" * (50 * 1024 * 1024) + "\n")
        fh.write("Cy Day,cy@example.com,short\n")
    result = _ingest(runtime, path)
    assert result.status == "succeeded", result.error
    assert (result.rows_read, result.inserted) == (3, 3)
    size = runtime.store.scalar("SELECT length(metadata['notes']) FROM records "
                                "WHERE email = 'bo@example.com'")
    assert size == 50 * 1024 * 1024


def test_bad_mapping_file_fails_the_job(runtime, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("fields:\n  email: NoSuchColumn\n")
    result = _ingest(runtime, write_csv(tmp_path / "p.csv"), mapping_file=mapping)
    _assert_failed_cleanly(runtime, result, "NoSuchColumn")
    # a corrected retry of the same file resumes the same job and succeeds
    mapping.write_text("fields:\n  email: E-mail Address\n")
    again = _ingest(runtime, write_csv(tmp_path / "p.csv"), mapping_file=mapping)
    assert again.status == "succeeded" and again.job_id == result.job_id
