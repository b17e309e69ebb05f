"""CSV header cells become column names by one rule, whichever path reads the file: the engine
(loading.csv_relation) or the Python reader used for staged reads (readers/delimited)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordbank.ingest.loading import csv_relation
from recordbank.ingest.pipeline import IngestOptions, Ingestor
from recordbank.ingest.readers import delimited
from recordbank.ingest.readers.base import ReadOptions, header_names

# BOM-prefixed and padded, a blank cell, a name repeated three times (padded with a tab once),
# and a header that spells out the name a blank cell would get.
MESSY_HEADER = "\ufeff E-mail ,Name,,Name, Phone ,\tName\t,column_3,Country"
NAMES = ["E-mail", "Name", "column_3_2", "Name_2", "Phone", "Name_3", "column_3", "Country"]
ROWS = [
    "ann@example.com,Ann,b1,Lee,+33 1 23 45 67 89,n3,c3,FR",
    "bob@example.com,Bob,b2,Ray,+44 20 7946 0958,n4,c4,GB",
    ",,b3,,,,c5,US",  # nobody: quarantined
]


# Detection takes a first row that repeats a label for data (ingest/dialect.py), so the
# pipeline's file has no repeats: BOM, padding, a blank cell and a spelled-out column_N.
PIPELINE_HEADER = "\ufeff E-mail ,Name,, Phone ,column_3,Country"
PIPELINE_NAMES = ["E-mail", "Name", "column_3_2", "Phone", "column_3", "Country"]
PIPELINE_ROWS = [
    "ann@example.com,Ann,b1,+33 1 23 45 67 89,c3,FR",
    "bob@example.com,Bob,b2,+44 20 7946 0958,c4,GB",
    ",,b3,,c5,US",  # nobody: quarantined
]


def _write(path: Path, delimiter: str = ",", newline: str = "\n",
           lines: list[str] | None = None) -> Path:
    lines = lines or [MESSY_HEADER] + ROWS
    text = newline.join(line.replace(",", delimiter) for line in lines) + newline
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.mark.parametrize(("cells", "names"), [
    (["a", "b"], ["a", "b"]),
    (["a", "a", "a"], ["a", "a_2", "a_3"]),
    (["a", "a", "a_2"], ["a", "a_3", "a_2"]),  # a suffix never takes a spelled-out name
    (["a_2", "a", "a"], ["a_2", "a", "a_3"]),
    (["", " ", "\t"], ["column_1", "column_2", "column_3"]),
    (["", "column_1"], ["column_1_2", "column_1"]),
    (["\ufeffid", " id\u00a0"], ["id", "id_2"]),  # BOM and NBSP are not part of a name
    (["x", "", "x", ""], ["x", "column_2", "x_2", "column_4"]),
    ([], []),
])
def test_header_names_are_trimmed_named_and_unique(cells: list[str], names: list[str]) -> None:
    got = header_names(cells)
    assert got == names
    assert len(set(got)) == len(got)


def test_engine_and_python_readers_name_columns_alike(store, tmp_path: Path) -> None:
    path = _write(tmp_path / "messy.csv")
    rel = csv_relation(path, ",", True, 0)
    options = ReadOptions(delimiter=",")
    rows = [r for batch in delimited.read(path, options) for r in batch]
    assert rel.columns == NAMES
    assert options.notes["header"] == NAMES
    assert list(rows[0]) == NAMES
    # the names label the same values on both paths
    sample = rel.sample(store)
    for i, row in enumerate(rows):
        assert {c: sample[c][i] or "" for c in NAMES} == row
    assert rows[0]["column_3_2"] == "b1" and rows[0]["column_3"] == "c3"


def test_a_bom_is_never_part_of_a_name_even_unquoted_or_after_skip(store, tmp_path: Path) -> None:
    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(b'\xef\xbb\xbf"email","name"\na@example.com,Ann\n')
    assert csv_relation(quoted, ",", True, 0).columns == ["email", "name"]
    options = ReadOptions(delimiter=",")
    assert list(next(delimited.read(quoted, options))[0]) == ["email", "name"]
    titled = tmp_path / "titled.csv"
    titled.write_bytes(b"\xef\xbb\xbfExport 2024\nemail,name\na@example.com,Ann\n")
    assert csv_relation(titled, ",", True, 1).columns == ["email", "name"]
    options = ReadOptions(delimiter=",", skip_lines=1)
    assert list(next(delimited.read(titled, options))[0]) == ["email", "name"]


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_pipeline_maps_and_stores_the_same_names_on_both_paths(runtime, tmp_path: Path,
                                                               delimiter: str) -> None:
    """The whole pipeline, once with the engine reading the file and once with the Python
    reader staging it (as for a ClickHouse server): same columns, mapping and stored rows.
    (Tab-separated files always take the Python reader; they check the names only.)"""
    ext = "csv" if delimiter == "," else "tsv"
    runs = []
    for native, newline in ((True, "\n"), (False, "\r\n")):  # other bytes: not a no-op
        runtime.settings.native_reads = native
        result = Ingestor(runtime).ingest(
            _write(tmp_path / f"messy_{native}.{ext}", delimiter, newline,
                   [PIPELINE_HEADER] + PIPELINE_ROWS), IngestOptions())
        assert result.status == "succeeded", result.error
        assert (result.rows_read, result.quarantined) == (3, 1)
        report = result.mapping_report["files"][0]
        stored = runtime.store.rows(
            "SELECT email, name, phone, country, metadata FROM records "
            "WHERE job_id = {j:UInt64} ORDER BY email", {"j": result.job_id})
        raw = runtime.store.scalar("SELECT raw FROM quarantine WHERE job_id = {j:UInt64}",
                                   {"j": result.job_id})
        runs.append((report["columns"], report["fields"], report["metadata_columns"],
                     stored, raw))
        runtime.store.command("TRUNCATE TABLE records")
    assert runs[0] == runs[1]
    columns, fields, metadata, stored, raw = runs[0]
    assert columns == PIPELINE_NAMES
    assert fields["email"] == ["E-mail"]
    assert set(metadata) <= set(PIPELINE_NAMES)
    assert [r[0] for r in stored] == ["ann@example.com", "bob@example.com"]
    assert stored[0][4]["column_3_2"] == "b1" and stored[0][4]["column_3"] == "c3"
    assert list(raw) == PIPELINE_NAMES  # no empty overflow fields on the engine path
    assert raw["column_3_2"] == "b3" and raw["column_3"] == "c5"
