"""Mapping files: the settings they carry, and every way they can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recordbank.ingest.mapping_config import (
    MAX_MAPPING_BYTES,
    MappingError,
    SourceConfig,
    load_mapping_file,
    load_mapping_text,
)
from recordbank.schema import DEFAULT_IDENTITY


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    config = SourceConfig()
    assert config.fields == {} and config.ignore == () and config.guess is True
    assert config.date_order is None and config.region is None
    assert config.identity == DEFAULT_IDENTITY
    assert config.table is config.sheet is config.record_element is None


@pytest.mark.parametrize("name", ["m.yaml", "m.yml", "mapping.txt", "noext"])
def test_yaml_settings(tmp_path: Path, name: str) -> None:
    text = """
fields: {email: "E-mail Address", name: [First, Last], phone: Tel}
date_order: ymd
region: gb
identity: [email, phone]
table: customer
sheet: Sheet 2
record_element: person
encoding: latin-1
delimiter: tab
"""
    config = load_mapping_file(write(tmp_path, name, text))
    assert config.fields == {"email": "E-mail Address", "name": ["First", "Last"], "phone": "Tel"}
    assert (config.date_order, config.region, config.identity) == ("YMD", "GB", ("email", "phone"))
    assert (config.table, config.sheet, config.record_element) == ("customer", "Sheet 2", "person")
    assert config.encoding == "iso8859-1" and config.delimiter == "\t"


@pytest.mark.parametrize("name", ["m.json", "m.txt"])
def test_json_settings(tmp_path: Path, name: str) -> None:
    data = {"fields": {"email": ["Mail"], "status": None}, "ignore": ["x", "x"], "guess": False}
    config = load_mapping_file(write(tmp_path, name, json.dumps(data)))
    assert config.fields == {"email": "Mail", "status": None}  # a one-column list is one column
    assert config.ignore == ("x",) and config.guess is False


def test_utf8_bom_and_accents(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", "\ufefffields:\n  name: [Prénom, Nom]\n".encode())
    assert load_mapping_file(path).fields == {"name": ["Prénom", "Nom"]}


def test_yaml_norway_is_a_country_not_false() -> None:
    assert load_mapping_text("region: NO\n").region == "NO"
    with pytest.raises(MappingError, match="guess"):
        load_mapping_text("guess: yes\n")  # not silently True either: say true or false
    assert load_mapping_text("guess: false\n").guess is False


@pytest.mark.parametrize(("text", "message"), [
    ("fields: {emial: Email}", "unknown master field 'emial'"),
    ("fields: {first_name: First}", "name: \\[First, Last\\]"),
    ("fields: {metadata: x}", "unknown master field 'metadata'"),
    ("fields: [email]", "fields: must be a mapping"),
    ("fields: {email: 5}", "expected a column name"),
    ("fields: {email: ''}", "expected a column name"),
    ("fields: {email: []}", "expected a column name"),
    ("fields: {email: [a, b]}", "takes one column"),
    ("fields: {name: [a, {b: c}]}", "expected a column name"),
    ("fields: {email: a, phone: a}", "'a' is given for both email and phone"),
    ("fields: {email: a}\nignore: [a]", "both mapped and ignored"),
    ("ignore: notes", "ignore: expected a list"),
    ("ignore: [1]", "ignore: expected a list"),
    ("date_order: DDM", "date_order"),
    ("date_order: 12", "date_order"),
    ("region: UK", "did you mean GB"),
    ("region: XX", "not an ISO 3166"),
    ("region: USA", "not an ISO 3166"),
    ("region: 1", "expected an ISO 3166"),
    ("identity: email", "identity: expected a non-empty list"),
    ("identity: []", "identity: expected a non-empty list"),
    ("identity: [email, emial]", "unknown master field 'emial'"),
    ("identity: [email, email]", "repeated"),
    ("table: 5", "table"),
    ("table: '  '", "table: must not be empty"),
    ("sheet: [a]", "sheet"),
    ("encoding: klingon", "unknown text encoding"),
    ("delimiter: ';;'", "one character"),
    ("guess: 1", "guess"),
    ("tabel: customer", "unknown setting 'tabel'"),
    ("- email\n- phone", "expected a mapping of settings"),
    ("just some words", "expected a mapping of settings"),
    ("fields: {email: a}\nfields: {phone: b}", "duplicate key 'fields'"),
    ("fields: {email: a, email: b}", "duplicate key 'email'"),
    ("fields: {email: [unclosed", "not valid YAML"),
    ("fields:\n  email: a\n bad-indent: b", "not valid YAML"),
    ("? [a, b]\n: c", "plain value"),
    ("   \n", "empty"),
])
def test_bad_yaml_mappings(text: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        load_mapping_text(text, "yaml", "m.yaml")


@pytest.mark.parametrize(("text", "message"), [
    ('{"fields": {"email": "a"', "not valid JSON"),
    ('{"fields": {"email": "a"}, "fields": {}}', "duplicate key 'fields'"),
    ("[1, 2]", "expected a mapping of settings"),
    ('"text"', "expected a mapping of settings"),
    ('{"fields": {"email": null}, "guess": "false"}', "guess"),
    ("", "empty"),
])
def test_bad_json_mappings(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        load_mapping_file(write(tmp_path, "m.json", text))


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "fields: {emial: x}\n")
    with pytest.raises(MappingError, match="bad.yaml"):
        load_mapping_file(path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping_file(tmp_path / "missing.yaml")
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping_file(tmp_path)  # a directory
    with pytest.raises(MappingError, match="not UTF-8"):
        load_mapping_file(write(tmp_path, "bin.yaml", b"fields: {email: \xff\xfe}\n"))
    with pytest.raises(MappingError, match="refused"):
        load_mapping_file(write(tmp_path, "big.yaml", "#" * (MAX_MAPPING_BYTES + 1)))
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping_file(write(tmp_path, "junk.yaml", b"\x00\x01\x02 binary junk"))


def test_override_for_command_line_flags() -> None:
    config = load_mapping_text("date_order: DMY\nregion: FR\ntable: customer\n")
    changed = config.override(date_order="mdy", region=None, table="staff")
    assert (changed.date_order, changed.region, changed.table) == ("MDY", "FR", "staff")
    assert config.date_order == "DMY"  # the original is unchanged
    with pytest.raises(MappingError, match="date_order"):
        config.override(date_order="DAY")
    with pytest.raises(MappingError, match="unknown setting"):
        config.override(colour="blue")


def test_python_construction_is_validated_too() -> None:
    with pytest.raises(Exception, match="unknown master field"):
        SourceConfig(fields={"nope": "x"})
    with pytest.raises(MappingError, match="identity"):
        SourceConfig.parse({"identity": ["emails"]})
