"""The same small messy people table written in every input format, for pipeline tests."""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import zipfile
from pathlib import Path

import zstandard

HEADER = ["Customer Id", "First Name", "Last Name", "E-mail Address", "Phone 1",
          "Mailing Country", "Subscription Date", "Status", "Company"]
ROWS = [
    ["1", " Mary", "Smith ", "Mary.Smith@Example.COM", "(415) 555-2671", "USA", "2024-01-31",
     "Active", "Acme"],
    ["2", "Hans", "Müller", "hans@example.de", "030 1234567", "Deutschland", "2023-12-01",
     "0", "Beta GmbH"],
    ["3", "Zoë", "\u00a0Brown", "zoe@example.co.uk", "+44 20 7946 0958", "U.K.", "2022-06-15",
     "pending", ""],
    # same person as row 1 after normalization: a duplicate
    ["4", "Mary", "Smith", " mary.smith@example.com ", "415.555.2671", "United States",
     "2024-01-31", "1", "Acme"],
    # nobody: quarantined with identity:missing
    ["5", "", "", "", "", "France", "2024-02-02", "active", "Ghost"],
    ["6", "Bob", "Stone", "not-an-email", "", "FR", "garbage-date", "weird", "X"],
]
EXPECTED = {"read": 6, "inserted": 4, "duplicates": 1, "quarantined": 1}


def write_csv(path: Path, delimiter: str = ",", encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(HEADER)
        w.writerows(ROWS)
    return path


def _records() -> list[dict[str, str]]:
    return [dict(zip(HEADER, row, strict=True)) for row in ROWS]


def write_jsonl(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for rec in _records():
            nested = {k: v for k, v in rec.items() if k != "Mailing Country"}
            nested["address"] = {"country": rec["Mailing Country"]}
            fh.write(json.dumps(nested, ensure_ascii=False) + "\n")
    return path


def write_json(path: Path) -> Path:
    path.write_text(json.dumps(_records(), ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_wrapped_json(path: Path) -> Path:
    path.write_text(json.dumps({"meta": {"count": 6}, "data": _records()}), encoding="utf-8")
    return path


def write_parquet(path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {h: [r[i] for r in ROWS] for i, h in enumerate(HEADER)}
    pq.write_table(pa.table(cols), path)
    return path


def write_xlsx(path: Path) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "People"
    ws.append(["Customer export"])  # a title row above the header
    ws.append(HEADER)
    for row in ROWS:
        ws.append(row)
    hidden = wb.create_sheet("Secret")
    hidden.append(HEADER)
    hidden.append(["99", "Hidden", "Person", "hidden@example.com", "", "US", "", "", ""])
    hidden.sheet_state = "hidden"
    wb.create_sheet("Empty")
    wb.save(path)
    return path


def write_xls(path: Path) -> Path:
    import xlwt

    wb = xlwt.Workbook()
    ws = wb.add_sheet("People")
    for c, h in enumerate(HEADER):
        ws.write(0, c, h)
    for r, row in enumerate(ROWS, start=1):
        for c, v in enumerate(row):
            ws.write(r, c, v)
    wb.save(str(path))
    return path


def write_xml(path: Path) -> Path:
    from xml.sax.saxutils import escape

    tags = ["customer_id", "first_name", "last_name", "email", "phone", "country",
            "signup_date", "status", "company"]
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<customers>']
    for row in ROWS:
        fields = "".join(f"<{t}>{escape(v)}</{t}>" for t, v in zip(tags, row, strict=True))
        parts.append(f"  <customer>{fields}</customer>")
    parts.append("</customers>\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _sql_value(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_mysql_dump(path: Path) -> Path:
    cols = ", ".join(f"`{c}`" for c in ("customer_id", "first_name", "last_name", "email",
                                          "phone", "country", "create_date", "active",
                                          "company"))
    values = ",\n".join("(" + ", ".join(_sql_value(v) for v in row) + ")" for row in ROWS)
    path.write_text(
        "-- MySQL dump 10.13\n/*!40101 SET NAMES utf8 */;\n"
        "CREATE TABLE `orders` (`order_id` int, `amount` decimal(10,2));\n"
        "INSERT INTO `orders` VALUES (1, 9.99), (2, 5.00);\n"
        "CREATE TABLE `customer` (`customer_id` int, `first_name` varchar(45), "
        "`last_name` varchar(45), `email` varchar(50), `phone` varchar(20), "
        "`country` varchar(50), `create_date` datetime, `active` varchar(10), "
        "`company` varchar(50));\n"
        f"INSERT INTO `customer` ({cols}) VALUES\n{values};\n", encoding="utf-8")
    return path


def write_pg_dump(path: Path) -> Path:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    lines = ["-- PostgreSQL database dump", "SET client_encoding = 'UTF8';",
             "CREATE TABLE public.customer (customer_id integer, first_name text, "
             "last_name text, email text, phone text, country text, created date, "
             "status text, company text);",
             "COPY public.customer (customer_id, first_name, last_name, email, phone, country, "
             "created, status, company) FROM stdin;"]
    lines += ["\t".join(esc(v) for v in row) for row in ROWS]
    lines += ["\\.", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def compress(path: Path, method: str) -> Path:
    data = path.read_bytes()
    if method == "gzip":
        out = path.with_name(path.name + ".gz")
        out.write_bytes(gzip.compress(data))
    elif method == "zstd":
        out = path.with_name(path.name + ".zst")
        out.write_bytes(zstandard.ZstdCompressor().compress(data))
    elif method == "bz2":
        out = path.with_name(path.name + ".bz2")
        out.write_bytes(bz2.compress(data))
    elif method == "zip":
        out = path.with_name(path.name + ".zip")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(path.name, data)
    else:
        raise ValueError(method)
    path.unlink()
    return out


WRITERS = {
    "csv": lambda d: write_csv(d / "people.csv"),
    "tsv": lambda d: write_csv(d / "people.tsv", delimiter="\t"),
    "semicolon-cp1252": lambda d: write_csv(d / "people_semi.csv", ";", "cp1252"),
    "utf16": lambda d: write_csv(d / "people_utf16.csv", ",", "utf-16"),
    "jsonl": lambda d: write_jsonl(d / "people.jsonl"),
    "json": lambda d: write_json(d / "people.json"),
    "json-wrapped": lambda d: write_wrapped_json(d / "people_wrapped.json"),
    "parquet": lambda d: write_parquet(d / "people.parquet"),
    "xlsx": lambda d: write_xlsx(d / "people.xlsx"),
    "xls": lambda d: write_xls(d / "people.xls"),
    "xml": lambda d: write_xml(d / "people.xml"),
    "mysqldump": lambda d: write_mysql_dump(d / "people.sql"),
    "pgdump": lambda d: write_pg_dump(d / "people_pg.sql"),
}
