"""The sample generator: determinism, planted counts that hold under any sane normalizer,
and every writer read back by its format's own reader."""

from __future__ import annotations

import csv
import gzip
import json
import re
import sqlite3
import zipfile
from collections import Counter
from datetime import datetime
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from recordbank.sample import (
    FORMATS,
    HEADER,
    JSON_KEYS,
    RATES,
    compress,
    expected_counts,
    generate_columns,
    generate_people,
    planted_identities,
    write_bench_files,
    write_csv,
    write_demo_sample,
    write_json_array,
    write_jsonl,
    write_mysql_dump,
    write_parquet,
    write_pg_dump,
    write_tsv,
    write_xls,
    write_xlsx,
    write_xml,
)
from recordbank.sample.demo import CRYPTIC_HEADER, CRYPTIC_MAPPING, MANIFEST, MAPPING
from recordbank.sample.pools import COUNTRIES
from recordbank.sample.writers import write_parquet_blocks

N = 3_000
COL = {h: i for i, h in enumerate(HEADER)}
BLANK = " \t\xa0"


def rows(n: int = N, **kw: object) -> list[list[str | None]]:
    return list(generate_people(n, **kw))  # type: ignore[arg-type]


def text(rs: list[list[str | None]]) -> list[list[str]]:
    """What a CSV round trip keeps: None becomes ""."""
    return [["" if v is None else v for v in r] for r in rs]


# --- normalizers a pipeline might reasonably use ----------------------------------------------

def norm_email(v: str | None) -> str:
    return (v or "").strip(BLANK).lower()


def norm_phone(v: str | None) -> str:
    return re.sub(r"\D", "", v or "")


def norm_name(first: str | None, last: str | None) -> str:
    return " ".join(f"{first or ''} {last or ''}".split())


ALIAS = {a.lower(): c.iso for c in COUNTRIES for a in c.aliases}


def norm_country(v: str | None) -> str:
    s = (v or "").strip(BLANK).lower()
    return ALIAS.get(s, "?" + s)


# --- determinism -------------------------------------------------------------------------------

def test_same_seed_same_rows_and_slices_agree() -> None:
    full = rows(2_000, seed=7)
    assert full == rows(2_000, seed=7)
    assert rows(300, seed=7, start=1_234) == full[1_234:1_534]
    assert full != rows(2_000, seed=8)
    blocks = [r for cols in generate_columns(2_000, seed=7, block_rows=333)
              for r in map(list, zip(*cols, strict=True))]
    assert blocks == full


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_csv(tmp_path / f"{name}.csv", generate_people(N, seed=3), HEADER)
        write_parquet(tmp_path / f"{name}.parquet", generate_people(N, seed=3), HEADER)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_date_order_changes_only_dates() -> None:
    ymd, dmy = rows(500, seed=1), rows(500, seed=1, date_order="DMY")
    d = COL["Subscription Date"]
    assert [r[:d] + r[d + 1:] for r in ymd] == [r[:d] + r[d + 1:] for r in dmy]
    assert any(a[d] != b[d] for a, b in zip(ymd, dmy, strict=True))


@pytest.mark.parametrize("kw", [{"date_order": "DYM"}, {"n": -1}, {"start": -5},
                                {"n": 2, "start": 100_000_000}])
def test_bad_arguments_are_refused(kw: dict[str, object]) -> None:
    args: dict[str, object] = {"n": 10, **kw}
    with pytest.raises(ValueError):
        next(generate_people(**args))  # type: ignore[arg-type]


# --- planted identities ------------------------------------------------------------------------

def test_expected_counts_match_identities_and_rates() -> None:
    n = 200_000
    c = expected_counts(n, seed=5, chunk=30_000)
    ident = planted_identities(n, seed=5)
    assert c.rows == n == c.unique + c.duplicates + c.quarantined
    assert c.quarantined == int((ident < 0).sum())
    assert c.unique == len(np.unique(ident[ident >= 0]))
    assert 0.008 < c.quarantined / n < 0.012
    assert 0.045 < c.duplicates / n < 0.055
    # a file starting later: duplicates of earlier persons count as new in that file
    late = expected_counts(50_000, seed=5, start=150_000)
    li = planted_identities(50_000, seed=5, start=150_000)
    assert late.unique == len(np.unique(li[li >= 0]))
    assert (li[li >= 0] < 150_000).any()


def test_planted_rows_hold_under_any_sane_normalization() -> None:
    n = 60_000
    rs = rows(n, seed=11)
    ident = planted_identities(n, seed=11)
    e, p, f, la, cty = (COL[h] for h in ("E-mail Address", "Phone 1", "First Name",
                                          "Last Name", "Mailing Country"))
    for i in np.flatnonzero(ident < 0):
        r = rs[i]
        assert all((r[k] or "").strip(BLANK) == "" for k in (e, p, f, la)), r
    dups = np.flatnonzero((ident >= 0) & (ident != np.arange(n)))
    assert len(dups) > 2_000
    for i in dups:
        a, b = rs[i], rs[ident[i]]
        assert norm_email(a[e]) == norm_email(b[e])
        assert norm_phone(a[p]) == norm_phone(b[p])
        assert norm_name(a[f], a[la]) == norm_name(b[f], b[la])
        assert (a[f] or "").split() == (b[f] or "").split()  # names never re-cased
        assert norm_country(a[cty]) == norm_country(b[cty])
        assert a[COL["Customer Id"]] is None or (a[0] or "").strip(BLANK) == (b[0] or "").strip(
            BLANK)
    unique = [rs[i] for i in np.flatnonzero(ident == np.arange(n))]
    assert all(norm_name(r[f], r[la]) for r in unique)  # every person has a name
    keys = Counter((norm_email(r[e]), norm_phone(r[p]), norm_name(r[f], r[la])) for r in unique)
    assert keys.most_common(1)[0][1] == 1
    with_token = [norm_email(r[e]) for r in unique if re.search(r"\d", norm_email(r[e]))]
    assert len(with_token) == len(set(with_token)) > 0.97 * len(unique)
    # rows whose email is unusable carry a unique, international phone instead
    bad = [r for r in unique if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", norm_email(r[e]))]
    assert 0.02 < len(bad) / len(unique) < 0.05
    phones = [(r[p] or "").strip(BLANK) for r in bad]
    assert all(ph.startswith(("+", "00")) for ph in phones)
    assert len({norm_phone(ph) for ph in phones}) == len(phones)


def test_messiness_is_there_at_documented_rates() -> None:
    n = 40_000
    rs = rows(n, seed=2)
    col = {h: [r[i] for r in rs] for h, i in COL.items()}
    padded = sum(1 for v in col["City"] if v and v != v.strip(BLANK))
    assert 0.01 < padded / n < 0.08
    assert any(v and "\xa0" in v for v in col["First Name"])
    assert any(v and "\t" in v for v in col["Last Name"])
    emails = [v for v in col["E-mail Address"] if v]
    assert any(v.isupper() for v in emails) and any(v != v.lower() and not v.isupper()
                                                    for v in emails)
    assert {"n/a", "N/A"} & set(emails)
    assert any(v.strip(BLANK).endswith("@") for v in emails)
    ph = [v.strip(BLANK) for v in col["Phone 1"] if v]
    for pattern in (r"\(\d{3}\) \d{3}-\d{4}", r"\+44 20 \d{4} \d{4}", r"0049 30 \d{8}",
                    r"030 \d{8}", r"\+33 \d( \d\d){4}", r".*(x|ext\.? )\d+", r"call me"):
        assert any(re.fullmatch(pattern, v) for v in ph), pattern
    countries = Counter((v or "").strip(BLANK) for v in col["Mailing Country"])
    for spelling in ("US", "USA", "United States", "U.K.", "UK", "Deutschland", "DE", "France",
                     "fra", "Earth"):
        assert countries[spelling] > 0, spelling
    statuses = {(v or "").strip(BLANK) for v in col["Status"]}
    assert {"1", "0", "true", "false", "Active", "ENABLED", "inactive", "pending", ""} <= statuses
    assert sum(1 for v in col["Company"] if v is None) / n == pytest.approx(
        RATES["company_blank"], abs=0.02)


@pytest.mark.parametrize(("order", "fmts"), [
    ("YMD", ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S")), ("MDY", ("%m/%d/%Y",)),
    ("DMY", ("%d.%m.%Y", "%d/%m/%Y")),
])
def test_dates_follow_the_files_order(order: str, fmts: tuple[str, ...]) -> None:
    def parses(v: str) -> bool:
        for fmt in fmts:
            try:
                datetime.strptime(v, fmt)
                return True
            except ValueError:
                pass
        return False

    vals = [(r[COL["Subscription Date"]] or "").strip(BLANK) for r in rows(20_000, seed=4,
                                                                         date_order=order)]
    vals = [v for v in vals if v]
    bad = [v for v in vals if not parses(v)]
    assert 0.01 < len(bad) / len(vals) < 0.04
    assert all(not parses_any(v) for v in bad), bad[:5]


def parses_any(v: str) -> bool:
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y"):
        try:
            datetime.strptime(v, fmt)
            return True
        except ValueError:
            pass
    return False


# --- writers, each read back by its format's own reader ---------------------------------------

@pytest.fixture(scope="module")
def sample() -> list[list[str | None]]:
    return rows(N, seed=9)


@pytest.mark.parametrize(("encoding", "delimiter"), [("utf-8", ","), ("cp1252", ";"),
                                                      ("utf-16", ","), ("utf-8-sig", "|")])
def test_csv_round_trip(tmp_path: Path, sample: list[list[str | None]], encoding: str,
                        delimiter: str) -> None:
    path = write_csv(tmp_path / "p.csv", sample, HEADER, delimiter=delimiter, encoding=encoding)
    raw = path.read_bytes()
    assert raw.startswith(b"\xff\xfe") == (encoding == "utf-16")
    assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    with open(path, encoding=encoding, newline="") as f:
        got = list(csv.reader(f, delimiter=delimiter))
    assert got[0] == list(HEADER) and got[1:] == text(sample)
    assert any("\n" in v for r in got for v in r)  # quoted newlines survive


def test_tsv_round_trip(tmp_path: Path, sample: list[list[str | None]]) -> None:
    path = write_tsv(tmp_path / "p.tsv", sample, HEADER, encoding="utf-16")
    with open(path, encoding="utf-16", newline="") as f:
        got = list(csv.reader(f, dialect="excel-tab"))
    assert got[1:] == text(sample)


def flatten(obj: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in obj.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def test_jsonl_nested_round_trip(tmp_path: Path, sample: list[list[str | None]]) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", sample, HEADER, keys=JSON_KEYS)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == N
    objs = [json.loads(line) for line in lines]
    assert lines == [json.dumps(o, ensure_ascii=False) for o in objs]  # canonical spelling
    assert all(isinstance(o["address"], dict) for o in objs)
    for o, r in zip(objs, sample, strict=True):
        assert flatten(o) == {k: v for k, v in zip(JSON_KEYS, r, strict=True) if v is not None}


def test_json_array_round_trip(tmp_path: Path, sample: list[list[str | None]]) -> None:
    path = write_json_array(tmp_path / "p.json", sample, HEADER)
    got = json.loads(path.read_text(encoding="utf-8"))
    assert [list(o.values()) for o in got] == sample
    assert list(got[0]) == list(HEADER)
    empty = write_json_array(tmp_path / "e.json", [], HEADER)
    assert json.loads(empty.read_text()) == []


def test_parquet_round_trip_with_row_groups(tmp_path: Path,
                                            sample: list[list[str | None]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = write_parquet(tmp_path / "p.parquet", sample, HEADER, row_group_rows=1_000)
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1_000] * 3
    table = pq.read_table(path)
    assert all(t == pa.string() for t in table.schema.types)
    assert [list(r.values()) for r in table.to_pylist()] == sample
    blocks = generate_columns(2_500, seed=9, block_rows=700)
    path2 = write_parquet_blocks(tmp_path / "b.parquet", blocks, HEADER, row_group_rows=1_000)
    meta2 = pq.ParquetFile(path2).metadata
    assert [meta2.row_group(i).num_rows for i in range(meta2.num_row_groups)] == [1000, 1000, 500]
    assert [list(r.values()) for r in pq.read_table(path2).to_pylist()] == sample[:2_500]


def test_xlsx_layout_and_values(tmp_path: Path, sample: list[list[str | None]]) -> None:
    import openpyxl
    from python_calamine import CalamineWorkbook

    path = write_xlsx(tmp_path / "p.xlsx", sample, HEADER)
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == ["Customers", "Lookup", "Empty"]
    assert wb["Lookup"].sheet_state == "hidden"
    got = list(wb["Customers"].iter_rows(values_only=True))
    assert got[0][0] == "Customer export" and got[2] == HEADER
    width = len(HEADER)  # read-only mode drops trailing empty cells
    assert [[v or None for v in (*r, *[None] * (width - len(r)))] for r in got[3:]] == [
        [v or None for v in r] for r in sample]
    cal = CalamineWorkbook.from_path(str(path))
    data = cal.get_sheet_by_name("Customers").to_python()
    assert len([r for r in data if any(r)]) == N + 2  # title + header + rows
    assert cal.get_sheet_by_name("Empty").to_python() in ([], [[]], [[""]])


def test_xls_layout_values_and_limit(tmp_path: Path, sample: list[list[str | None]]) -> None:
    import xlrd

    path = write_xls(tmp_path / "p.xls", sample, HEADER)
    book = xlrd.open_workbook(str(path))
    assert book.sheet_names() == ["Customers", "Lookup", "Empty"]
    assert book.sheet_by_name("Lookup").visibility == 1
    sh = book.sheet_by_name("Customers")
    assert sh.nrows == N + 2 and sh.cell_value(0, 0) == "Customer export"
    assert sh.row_values(1) == list(HEADER)
    assert [sh.row_values(i) for i in range(2, sh.nrows)] == text(sample)
    too_many = (["x"] * len(HEADER) for _ in range(65_535))
    with pytest.raises(ValueError, match="65,534|65534"):
        write_xls(tmp_path / "big.xls", too_many, HEADER)


def test_xml_nested_round_trip(tmp_path: Path, sample: list[list[str | None]]) -> None:
    from lxml import etree

    path = write_xml(tmp_path / "p.xml", sample, HEADER, keys=JSON_KEYS)
    root = etree.parse(str(path), etree.XMLParser(resolve_entities=False)).getroot()
    assert root.tag == "customers" and len(root) == N
    for el, r in zip(root, sample, strict=True):
        assert el.tag == "customer"
        got = {f"{c.tag}.{cc.tag}" if len(c) else c.tag: (cc.text if len(c) else c.text) or ""
               for c in el for cc in (c if len(c) else [c])}
        want = {k: v for k, v in zip(JSON_KEYS, r, strict=True) if v is not None}
        assert got == want
    flat = write_xml(tmp_path / "f.xml", sample[:5], HEADER)
    assert b"<e_mail_address>" in flat.read_bytes()


def test_mysql_dump_read_by_clickhouse(tmp_path: Path, sample: list[list[str | None]],
                                       store: object) -> None:
    path = write_mysql_dump(tmp_path / "p.sql", sample, HEADER, table="customers", orders=50)
    text_ = path.read_text(encoding="utf-8")
    assert text_.index("CREATE TABLE `orders`") < text_.index("CREATE TABLE `customers`")
    got = store.rows(  # type: ignore[attr-defined]
        f"SELECT * FROM file('{path}', 'MySQLDump')",
        settings={"input_format_mysql_dump_table_name": "customers"})
    assert len(got) == N
    assert [list(r) for r in got] == sample
    orders = store.rows(  # type: ignore[attr-defined]
        f"SELECT count() FROM file('{path}', 'MySQLDump')",
        settings={"input_format_mysql_dump_table_name": "orders"})
    assert orders[0][0] == 50


def _pg_unescape(v: str) -> str | None:
    if v == "\\N":
        return None
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "r": "\r"}.get(m[1], m[1]), v)


def test_pg_dump_copy_round_trip(tmp_path: Path, sample: list[list[str | None]]) -> None:
    path = write_pg_dump(tmp_path / "p.sql", sample, HEADER)
    lines = path.read_text(encoding="utf-8").split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("COPY public.customers"))
    end = lines.index("\\.", start)
    got = [[_pg_unescape(v) for v in line.split("\t")] for line in lines[start + 1:end]]
    assert got == sample
    assert any(line.startswith("COPY public.orders") for line in lines[:start])


def test_pg_dump_inserts_load_into_sqlite(tmp_path: Path,
                                          sample: list[list[str | None]]) -> None:
    path = write_pg_dump(tmp_path / "p.sql", sample, HEADER, style="insert", orders=20)
    db = sqlite3.connect(":memory:")
    db.execute("ATTACH ':memory:' AS public")
    stmt = ""
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        stmt += line
        if sqlite3.complete_statement(stmt):
            if stmt.lstrip().startswith(("CREATE TABLE", "INSERT")):
                db.execute(stmt.replace("character varying(32)", "text")
                           .replace("numeric(10,2)", "real")
                           .replace("timestamp without time zone", "text"))
            stmt = ""
    assert [list(r) for r in db.execute("SELECT * FROM public.customers")] == sample
    assert db.execute("SELECT count(*) FROM public.orders").fetchone() == (20,)
    with pytest.raises(ValueError):
        write_pg_dump(tmp_path / "x.sql", [], HEADER, style="csv")


def test_compress_every_method(tmp_path: Path, sample: list[list[str | None]]) -> None:
    import zstandard

    src = write_csv(tmp_path / "p.csv", sample, HEADER)
    data = src.read_bytes()
    gz = compress(src, "gzip")
    assert gz.name == "p.csv.gz" and gzip.decompress(gz.read_bytes()) == data
    zst = compress(src, "zstd")
    with open(zst, "rb") as f:
        assert zstandard.ZstdDecompressor().stream_reader(f).read() == data
    zp = compress(src, "zip", keep=False)
    assert not src.exists()
    with zipfile.ZipFile(zp) as zf:
        assert zf.namelist() == ["p.csv"] and zf.read("p.csv") == data
    with pytest.raises(ValueError):
        compress(gz, "rar")


# --- file sets ---------------------------------------------------------------------------------

def test_demo_sample(tmp_path: Path) -> None:
    files = write_demo_sample(tmp_path, rows_per_file=500, seed=42)
    assert len(files) >= 10 and all(p.exists() and p.stat().st_size > 10_000 for p in files)
    suffixes = {"".join(p.suffixes[-2:]) if p.suffix == ".gz" else p.suffix for p in files}
    assert {".csv", ".tsv", ".jsonl", ".json", ".parquet", ".xlsx", ".xml", ".sql",
            ".csv.gz"} <= suffixes
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    exp = manifest["expected"]
    assert exp["rows"] == 500 * len(files) == sum(f["rows"] for f in manifest["files"])
    assert exp["rows"] == exp["unique"] + exp["duplicates"] + exp["quarantined"]
    # overlap between files: more duplicates than the files hold on their own
    assert exp["duplicates"] > sum(f["duplicates"] for f in manifest["files"]) + 400
    from recordbank.ingest.mapping import load_mapping_file

    config = load_mapping_file(tmp_path / MAPPING)  # the pipeline's own mapping format
    mapped = {c for cols in config.fields.values() if cols
              for c in ([cols] if isinstance(cols, str) else cols)}
    assert mapped == {c for c, f in CRYPTIC_MAPPING.items() if f}
    cryptic = next(p for p in files if "cryptic" in p.name)
    with open(cryptic, encoding="utf-8", newline="") as f:
        assert next(csv.reader(f)) == list(CRYPTIC_HEADER)
    cp = next(p for p in files if "cp1252" in p.name)
    with open(cp, encoding="cp1252", newline="") as f:
        assert sum(1 for _ in csv.reader(f, delimiter=";")) == 501
    with gzip.open(next(p for p in files if p.suffix == ".gz"), "rt", newline="") as f:
        assert sum(1 for _ in csv.reader(f)) == 501
    again = tmp_path / "again"
    write_demo_sample(again, rows_per_file=500, seed=42)
    assert all((again / p.name).read_bytes() == p.read_bytes() for p in files
               if p.suffix != ".xlsx")  # xlsx (a zip) holds its save time


def test_bench_files_every_format(tmp_path: Path) -> None:
    out = write_bench_files(tmp_path, 1_200, [f for f in FORMATS], seed=1)
    assert set(out) == set(FORMATS)
    assert all(p.exists() and p.stat().st_size > 1_000 for p in out.values())
    assert len(set(out.values())) == len(FORMATS)
    plain = out["csv"].read_bytes()
    assert gzip.decompress(out["csv.gz"].read_bytes()) == plain
    with zipfile.ZipFile(out["csv.zip"]) as zf:
        assert zf.namelist() == [out["csv"].name] and zf.read(out["csv"].name) == plain
    assert not list(tmp_path.glob(".*partial"))
    with open(out["csv"], encoding="utf-8", newline="") as f:
        assert list(csv.reader(f))[1:] == text(rows(1_200, seed=1))
    with pytest.raises(ValueError, match="unknown format"):
        write_bench_files(tmp_path, 10, ["csv.rar"])


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl.gz"])
def test_parallel_writing_equals_serial(tmp_path: Path, fmt: str) -> None:
    n = 200_000
    par = write_bench_files(tmp_path / "par", n, [fmt], seed=4, workers=2)[fmt]
    one = write_bench_files(tmp_path / "one", n, [fmt], seed=4, workers=1)[fmt]
    if fmt.endswith(".gz"):
        assert gzip.decompress(par.read_bytes()) == gzip.decompress(one.read_bytes())
    else:
        assert par.read_bytes() == one.read_bytes()
    if fmt == "csv":
        with open(par, encoding="utf-8", newline="") as f:
            assert sum(1 for _ in islice(csv.reader(f), 1, None)) == n


def test_bench_refuses_xls_beyond_its_limit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="xls"):
        write_bench_files(tmp_path, 70_000, ["csv", "xls"])
    assert not list(tmp_path.iterdir())


def test_clickhouse_reads_the_bench_formats(tmp_path: Path, store: object) -> None:
    """The engine that bulk-loads these files agrees on every row count and a few values."""
    n = 2_345
    out = write_bench_files(tmp_path, n, ["csv", "tsv", "jsonl", "json", "parquet"], seed=6)
    want = rows(n, seed=6)
    q = store.rows  # type: ignore[attr-defined]
    for fmt, ch_format in (("csv", "CSVWithNames"), ("jsonl", "JSONEachRow"),
                           ("parquet", "Parquet")):
        assert q(f"SELECT count() FROM file('{out[fmt]}', '{ch_format}')")[0][0] == n, fmt
    got = q(f"SELECT * FROM file('{out['parquet']}', 'Parquet')")
    assert [list(r) for r in got] == want
    emails = q(f"SELECT email FROM file('{out['jsonl']}', 'JSONEachRow')")
    assert [r[0] or None for r in emails] == [r[COL["E-mail Address"]] or None for r in want]
    cities = q(f"SELECT `address.city` FROM file('{out['jsonl']}', 'JSONEachRow')",
               settings={"input_format_import_nested_json": 1})
    assert len(cities) == n
