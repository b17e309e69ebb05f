"""Ready-made file sets: the README's demo sample and the benchmark inputs.

The demo files cover overlapping slices of one population (each file starts 90% of the way
into the previous one), re-spelled per file, so cross-file deduplication shows.
``manifest.json`` next to them says, per file, its format, date order and planted counts,
and the expected totals of ingesting all of them into an empty store.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import numpy as np

from recordbank.sample import writers
from recordbank.sample.people import (
    BLOCK_ROWS,
    HEADER,
    JSON_KEYS,
    expected_counts,
    generate_columns,
    generate_people,
    planted_identities,
)
from recordbank.sample.sqldump import write_mysql_dump, write_pg_dump
from recordbank.sample.writers import Cell, Rows

MANIFEST: Final = "manifest.json"
MAPPING: Final = "mapping.yaml"
CRYPTIC_HEADER: Final = tuple(f"col_{c}" for c in "abcdefghijkl")
# Master field of each cryptic column (mapping.yaml); several `name` columns join in order.
CRYPTIC_MAPPING: Final[dict[str, str | None]] = dict(zip(CRYPTIC_HEADER, (
    "user_id", "name", "name", "email", "phone", "address", "city", "country", "created_date",
    "status", None, None), strict=True))


@dataclass(frozen=True)
class DemoFile:
    name: str
    format: str
    date_order: str
    encoding: str = "utf-8"
    delimiter: str = ","
    table: str | None = None  # for dumps: the person table
    mapping: str | None = None  # explicit mapping file, relative to the sample dir


# The demo files, in ingest order.
_DEMO: Final[tuple[DemoFile, ...]] = (
    DemoFile("01_customers.csv", "csv", "YMD"),
    DemoFile("02_crm_legacy_cp1252.csv", "csv", "DMY", encoding="cp1252", delimiter=";"),
    DemoFile("03_partner_export_utf16.tsv", "tsv", "MDY", encoding="utf-16"),
    DemoFile("04_signups.jsonl", "jsonl", "YMD"),
    DemoFile("05_signups.json", "json", "YMD"),
    DemoFile("06_newsletter.parquet", "parquet", "YMD"),
    DemoFile("07_contacts.xlsx", "xlsx", "DMY"),
    DemoFile("08_contacts.xml", "xml", "YMD"),
    DemoFile("09_shop_mysql.sql", "mysql", "YMD", table="customers"),
    DemoFile("10_archive.csv.gz", "csv.gz", "MDY"),
    DemoFile("11_legacy_cryptic.csv", "csv", "DMY", mapping=MAPPING),
)


def _yaml_mapping() -> str:
    """The mapping file for 11_legacy_cryptic.csv in recordbank's format (field -> column(s))."""
    fields: dict[str, list[str]] = {}
    for column, field in CRYPTIC_MAPPING.items():
        if field:
            fields.setdefault(field, []).append(column)
    lines = [
        "# Explicit mapping for 11_legacy_cryptic.csv, whose headers say nothing.",
        "# master field -> source column (several columns for name are joined with a space);",
        "# columns not listed go to metadata.",
        "date_order: DMY",
        "fields:",
    ]
    for field, columns in fields.items():
        value = columns[0] if len(columns) == 1 else "[" + ", ".join(columns) + "]"
        lines.append(f"  {field}: {value}")
    return "\n".join(lines) + "\n"


def _write(fmt: str, path: Path, rows: Rows, header: Sequence[str], encoding: str = "utf-8",
           table: str = "customers", delimiter: str = ",") -> Path:
    """Write ``rows`` in ``fmt`` (a name of FORMATS); compressed names end in .gz/.zst/.zip."""
    base, _, comp = fmt.partition(".")
    inner = path.name.removesuffix(f".{comp}")
    target = path.with_name(f".{inner}.partial") if comp else path
    plain: dict[str, Callable[[], Path]] = {
        "csv": lambda: writers.write_csv(target, rows, header, delimiter, encoding),
        "tsv": lambda: writers.write_tsv(target, rows, header, encoding=encoding),
        "jsonl": lambda: writers.write_jsonl(target, rows, header, keys=JSON_KEYS),
        "json": lambda: writers.write_json_array(target, rows, header),
        "parquet": lambda: writers.write_parquet(target, rows, header),
        "xlsx": lambda: writers.write_xlsx(target, rows, header),
        "xls": lambda: writers.write_xls(target, rows, header),
        "xml": lambda: writers.write_xml(target, rows, header, keys=JSON_KEYS),
        "mysql": lambda: write_mysql_dump(target, rows, header, table=table),
        "pgdump": lambda: write_pg_dump(target, rows, header, table=table),
    }
    if base not in plain or (comp and comp not in ("gz", "zst", "zip")):
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    out = plain[base]()
    if comp:
        out = writers.compress(out, _COMPRESS[comp], keep=False, dest=path, arcname=inner)
    return out


FORMATS: Final = ("csv", "tsv", "jsonl", "json", "parquet", "xlsx", "xls", "xml", "mysql",
                  "pgdump", "csv.gz", "csv.zst", "csv.zip", "jsonl.gz", "jsonl.zst")
_EXT: Final = {"mysql": "mysql.sql", "pgdump": "pg.sql"}


def write_demo_sample(dest_dir: str | Path, rows_per_file: int = 2000, seed: int = 42,
                      ) -> list[Path]:
    """The README demo's messy files (see ``_DEMO``); also writes mapping.yaml and manifest.json.

    Returns the data files in ingest order.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    step = max(1, rows_per_file * 9 // 10)
    out: list[Path] = []
    idents: list[np.ndarray] = []
    entries = []
    for k, spec in enumerate(_DEMO):
        start = k * step
        rows: Iterable[list[Cell]] = generate_people(
            rows_per_file, seed=seed, start=start, date_order=spec.date_order,
            restyle=None if k == 0 else seed * 100 + k)
        header = CRYPTIC_HEADER if spec.mapping else HEADER
        out.append(_write(spec.format, dest / spec.name, rows, header, spec.encoding,
                          spec.table or "customers", spec.delimiter))
        ident = planted_identities(rows_per_file, seed, start)
        idents.append(ident)
        entries.append({**asdict(spec), "start": start,
                        **asdict(expected_counts(rows_per_file, seed, start))})
    everything = np.concatenate(idents)
    people = everything[everything >= 0]
    total = {"rows": int(len(everything)), "quarantined": int((everything < 0).sum()),
             "unique": int(len(np.unique(people)))}
    total["duplicates"] = total["rows"] - total["quarantined"] - total["unique"]
    (dest / MAPPING).write_text(_yaml_mapping(), encoding="utf-8")
    (dest / MANIFEST).write_text(json.dumps(
        {"seed": seed, "rows_per_file": rows_per_file, "files": entries, "expected": total},
        indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


_COMPRESS: Final = {"gz": "gzip", "zst": "zstd", "zip": "zip"}
_PARALLEL: Final = ("csv", "tsv", "jsonl")  # formats whose blocks concatenate


def _encode_block(fmt: str, seed: int, lo: int, hi: int, date_order: str) -> bytes:
    """Rows [lo, hi) as UTF-8 text in ``fmt``, byte for byte as the one-process writer."""
    cols = next(generate_columns(hi - lo, seed=seed, start=lo, date_order=date_order,
                                 block_rows=hi - lo))
    rows = zip(*cols, strict=True)
    if fmt == "jsonl":
        return writers.jsonl_text(rows, JSON_KEYS).encode("utf-8")
    buf = io.StringIO()
    w = (csv.writer(buf, lineterminator="\n") if fmt == "csv"
         else csv.writer(buf, delimiter="\t", lineterminator="\r\n"))
    if lo == 0:
        w.writerow(HEADER)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _write_parallel(path: Path, fmt: str, n: int, seed: int, date_order: str,
                    workers: int) -> Path:
    """``fmt`` text from ``workers`` processes (spawned: safe beside an open chDB), in row
    order, with at most 2 blocks per worker in flight."""
    spans = [(lo, min(lo + BLOCK_ROWS, n)) for lo in range(0, n, BLOCK_ROWS)]
    with open(path, "wb") as f, ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: deque[Future[bytes]] = deque()
        for lo, hi in spans:
            pending.append(pool.submit(_encode_block, fmt, seed, lo, hi, date_order))
            if len(pending) >= 2 * workers:
                f.write(pending.popleft().result())
        while pending:
            f.write(pending.popleft().result())
    return path


def write_bench_files(dest_dir: str | Path, n: int, formats: Sequence[str] = ("csv",),
                      seed: int = 0, date_order: str = "YMD", workers: int | None = None,
                      ) -> dict[str, Path]:
    """``people_<n>.<format>`` per format (see FORMATS), all holding the same n rows.

    CSV, TSV and JSONL (plain or compressed) of 200k+ rows are written by ``workers``
    processes (default: one per CPU); the caller's main module must then be import-safe
    (``if __name__ == "__main__":``). The bytes are the same as with one process.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}; known: {', '.join(FORMATS)}")
    if "xls" in formats and n > writers.XLS_MAX_ROWS:
        raise ValueError(f".xls holds at most {writers.XLS_MAX_ROWS} data rows, not {n}")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    out: dict[str, Path] = {}
    for fmt in formats:
        base, _, comp = fmt.partition(".")
        inner = f"people_{n}.{_EXT.get(base, base)}"
        path = dest / (inner + (f".{comp}" if comp else ""))
        blocks = generate_columns(n, seed=seed, date_order=date_order)
        if base in _PARALLEL and workers > 1 and n >= 200_000:
            target = path.with_name(f".{inner}.partial") if comp else path
            _write_parallel(target, base, n, seed, date_order, workers)
            out[fmt] = writers.compress(target, _COMPRESS[comp], keep=False, dest=path,
                                        arcname=inner) if comp else path
        elif fmt == "parquet":
            out[fmt] = writers.write_parquet_blocks(path, blocks, HEADER)
        else:
            rows = (row for cols in blocks for row in zip(*cols, strict=True))
            out[fmt] = _write(fmt, path, rows, HEADER)
    return out
