"""readers/jsonfile.py: arrays, JSON lines, wrapped arrays, flattening, malformed input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from recordbank.ingest.errors import EmptyFile, UnreadableFile, UnsafeFile
from recordbank.ingest.readers import jsonfile
from recordbank.ingest.readers.base import ReadOptions, Row

PEOPLE: list[dict[str, Any]] = [
    {"id": 1, "name": "Ann", "active": True, "score": 1.5, "tags": ["a", "b"],
     "address": {"city": "Paris", "geo": {"lat": 48.8}}, "note": None},
    {"id": 2, "name": "Bob", "active": False, "email": "bob@example.com"},
]
ANN: Row = {"id": "1", "name": "Ann", "active": "true", "score": "1.5", "tags": '["a","b"]',
            "address.city": "Paris", "address.geo.lat": "48.8", "note": None}
BOB: Row = {"id": "2", "name": "Bob", "active": "false", "email": "bob@example.com"}


def _read(path: Path, **kw: Any) -> tuple[list[Row], ReadOptions]:
    opts = ReadOptions(**kw)
    rows = [row for batch in jsonfile.read(path, opts) for row in batch]
    return rows, opts


def _write(tmp_path: Path, text: str, name: str = "data.bin", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding=encoding)
    return p


def test_array_flattened(tmp_path: Path) -> None:
    rows, opts = _read(_write(tmp_path, json.dumps(PEOPLE, indent=2)))
    assert rows == [ANN, BOB]
    assert opts.notes["json_shape"] == "array"


def test_compact_array_on_one_line(tmp_path: Path) -> None:
    rows, _ = _read(_write(tmp_path, json.dumps(PEOPLE)))
    assert rows == [ANN, BOB]


def test_json_lines_with_blank_lines_and_crlf(tmp_path: Path) -> None:
    text = "\r\n".join(json.dumps(p) for p in PEOPLE) + "\r\n\r\n"
    rows, opts = _read(_write(tmp_path, text))
    assert rows == [ANN, BOB]
    assert opts.notes["json_shape"] == "lines"


def test_pretty_printed_concatenated_objects(tmp_path: Path) -> None:
    text = "\n".join(json.dumps(p, indent=2) for p in PEOPLE)
    rows, opts = _read(_write(tmp_path, text))
    assert rows == [ANN, BOB]
    assert opts.notes["json_shape"] == "concatenated"


@pytest.mark.parametrize("key", ["data", "records", "results", "items"])
def test_wrapped_under_a_known_key(tmp_path: Path, key: str) -> None:
    doc = {"meta": {"count": 2}, "columns": [{"name": "id"}], key: PEOPLE}
    rows, opts = _read(_write(tmp_path, json.dumps(doc, indent=1)))
    assert rows == [ANN, BOB]
    assert opts.notes["json_shape"] == f"wrapped:{key}"


def test_wrapped_under_the_only_list_of_objects(tmp_path: Path) -> None:
    doc = {"page": 1, "ids": [1, 2], "people": PEOPLE, "total": 2}
    rows, opts = _read(_write(tmp_path, json.dumps(doc)))
    assert rows == [ANN, BOB]
    assert opts.notes["json_shape"] == "wrapped:people"


def test_wrapped_ambiguous_needs_a_table(tmp_path: Path) -> None:
    doc = {"staff": PEOPLE[:1], "clients": PEOPLE[1:]}
    p = _write(tmp_path, json.dumps(doc))
    with pytest.raises(UnreadableFile, match="staff"):
        _read(p)
    rows, _ = _read(p, table="clients")
    assert rows == [BOB]
    with pytest.raises(UnreadableFile, match="nope"):
        _read(p, table="nope")


def test_single_object_is_one_record(tmp_path: Path) -> None:
    rows, opts = _read(_write(tmp_path, json.dumps(PEOPLE[0], indent=2)))
    assert rows == [ANN]
    assert opts.notes["json_shape"] == "object"


def test_batches_and_streaming_over_many_chunks(tmp_path: Path) -> None:
    n = 30_000  # several MB: the array is parsed over a sliding buffer, not loaded at once
    big = [{"i": i, "s": "x" * 100, "n": {"k": i}} for i in range(n)]
    p = _write(tmp_path, json.dumps({"data": big}))
    batches = list(jsonfile.read(p, ReadOptions(batch_rows=7_000)))
    assert [len(b) for b in batches] == [7000, 7000, 7000, 7000, 2000]
    assert batches[-1][-1] == {"i": str(n - 1), "s": "x" * 100, "n.k": str(n - 1)}


def test_long_string_spanning_buffer_chunks(tmp_path: Path) -> None:
    long = "é" * (3 << 20)
    rows, _ = _read(_write(tmp_path, json.dumps([{"a": long, "b": 12345678}], ensure_ascii=False)))
    assert rows == [{"a": long, "b": "12345678"}]


def test_encodings_bom_and_utf16(tmp_path: Path) -> None:
    text = json.dumps([{"name": "Zoë €"}], ensure_ascii=False)
    for enc in ("utf-8-sig", "utf-16"):
        rows, _ = _read(_write(tmp_path, text, f"{enc}.json", enc))
        assert rows == [{"name": "Zoë €"}]


def test_non_object_records_kept_as_value(tmp_path: Path) -> None:
    rows, opts = _read(_write(tmp_path, '[1, "two", null, [3]]'))
    assert rows == [{"value": "1"}, {"value": "two"}, {"value": None}, {"value": "[3]"}]
    assert opts.notes["non_object_records"] == 4


def test_empty_array_yields_nothing(tmp_path: Path) -> None:
    rows, _ = _read(_write(tmp_path, "[ ]"))
    assert rows == []


@pytest.mark.parametrize("text", ["", "  \n\t "])
def test_empty_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(EmptyFile):
        _read(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[{"a": 1},\n{"a": 2},\n{"a": ,}]', "line 3"),  # bad value in the third line
        ('[{"a": 1} {"a": 2}]', "expected ','"),  # missing comma
        ('[{"a": 1},', "ends inside"),  # truncated array
        ('[{"a": 1}]\n[{"a": 2}]', "after the top-level array"),
        ('{"data": [{"a": 1}', "ends inside"),
        ('{"id": 1, "x" 1}', "expected ':'"),
        ("not json", "starts with"),
    ],
)
def test_malformed_json_names_the_spot(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(UnreadableFile, match=where):
        _read(_write(tmp_path, text))


def test_malformed_json_line_reports_line_number(tmp_path: Path) -> None:
    lines = [json.dumps({"i": i}) for i in range(10)]
    lines[6] = '{"i": 6, "broken": }'
    with pytest.raises(UnreadableFile, match="line 7"):
        _read(_write(tmp_path, "\n".join(lines)))


def test_malformed_deep_in_a_big_array_reports_offset(tmp_path: Path) -> None:
    good = ",\n".join(json.dumps({"i": i, "pad": "y" * 50}) for i in range(40_000))
    p = _write(tmp_path, "[" + good + ',\n{"i": oops}]')
    with pytest.raises(UnreadableFile, match="line 40001"):
        _read(p, batch_rows=1000)


def test_deep_nesting_refused(tmp_path: Path) -> None:
    with pytest.raises((UnsafeFile, UnreadableFile)):
        _read(_write(tmp_path, "[" + "[" * 100_000 + "]" * 100_000 + "]"))


def test_invalid_utf8_mid_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    body = ("[" + ",".join(json.dumps({"i": i}) for i in range(50_000))).encode()
    p.write_bytes(body + b',{"n": "\xff\xfe"}]')
    with pytest.raises(UnreadableFile):
        _read(p, encoding="utf-8")


def test_wrapped_object_followed_by_more_values_is_concatenated(tmp_path: Path) -> None:
    text = '{"people": [{"a": 1}]}\n{"people": [{"a": 2}]}'
    rows, opts = _read(_write(tmp_path, text))
    assert rows == [{"people": '[{"a":1}]'}, {"people": '[{"a":2}]'}]
    assert opts.notes["json_shape"] in ("lines", "concatenated")
