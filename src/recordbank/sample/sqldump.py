"""SQL dump writers: MySQL (mysqldump style, extended INSERTs) and PostgreSQL (pg_dump style).

Both put a non-person table ``orders`` before the person table, so a reader has to choose
the table by name or by how well its columns fit the master schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from recordbank.sample.writers import Cell, Rows, _chunks, _open, snake

INSERT_ROWS: Final = 1_000  # rows per extended INSERT (mysqldump packs ~1 MB per statement)
_MYSQL_ESC: Final = str.maketrans({
    "\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\0": "\\0", "\x1a": "\\Z",
})
_PG_COPY_ESC: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _orders(n: int) -> list[tuple[int, str, str, str]]:
    """A small, deterministic order table: (id, customer id, amount, timestamp)."""
    return [(i, f"CUST-{(i * 7919) % 100_000 + 1:07d}", f"{(i * 1237) % 50_000 / 100:.2f}",
             f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d} {i % 24:02d}:{i * 7 % 60:02d}:00")
            for i in range(1, n + 1)]


def _mysql(v: Cell) -> str:
    return "NULL" if v is None else "'" + v.translate(_MYSQL_ESC) + "'"


def write_mysql_dump(path: str | Path, rows: Rows, header: Sequence[str],
                     table: str = "customers", orders: int = 200) -> Path:
    """A mysqldump-like file: session settings, ``orders`` then ``table``, extended INSERTs."""
    cols = [snake(h) for h in header]
    with _open(path) as f:
        f.write(
            "-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n"
            "-- Host: localhost    Database: shop\n"
            "-- ------------------------------------------------------\n"
            "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n"
            "/*!50503 SET NAMES utf8mb4 */;\n"
            "/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n\n"
            "DROP TABLE IF EXISTS `orders`;\n"
            "CREATE TABLE `orders` (\n"
            "  `order_id` int NOT NULL AUTO_INCREMENT,\n"
            "  `customer_id` varchar(32) DEFAULT NULL,\n"
            "  `amount` decimal(10,2) NOT NULL,\n"
            "  `ordered_at` datetime DEFAULT NULL,\n"
            "  PRIMARY KEY (`order_id`)\n"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\n"
            "LOCK TABLES `orders` WRITE;\n"
        )
        order_rows = _orders(orders)
        for lo in range(0, len(order_rows), INSERT_ROWS):
            values = ",".join(f"({i},'{c}',{a},'{t}')" for i, c, a, t in
                              order_rows[lo:lo + INSERT_ROWS])
            f.write(f"INSERT INTO `orders` VALUES {values};\n")
        f.write("UNLOCK TABLES;\n\n")
        defs = ",\n".join(
            f"  `{c}` {'text' if c == 'notes' else 'varchar(255)'} DEFAULT NULL" for c in cols)
        f.write(f"DROP TABLE IF EXISTS `{table}`;\nCREATE TABLE `{table}` (\n{defs}\n"
                ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\n"
                f"LOCK TABLES `{table}` WRITE;\n"
                f"/*!40000 ALTER TABLE `{table}` DISABLE KEYS */;\n")
        for chunk in _chunks(rows, INSERT_ROWS):
            values = ",".join("(" + ",".join(map(_mysql, row)) + ")" for row in chunk)
            f.write(f"INSERT INTO `{table}` VALUES {values};\n")
        f.write(f"/*!40000 ALTER TABLE `{table}` ENABLE KEYS */;\nUNLOCK TABLES;\n\n"
                "/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n"
                "-- Dump completed\n")
    return Path(path)


def _pg_copy(v: Cell) -> str:
    return "\\N" if v is None else v.translate(_PG_COPY_ESC)


def _pg_literal(v: Cell) -> str:
    return "NULL" if v is None else "'" + v.replace("'", "''") + "'"


def write_pg_dump(path: str | Path, rows: Rows, header: Sequence[str],
                  table: str = "customers", style: str = "copy", orders: int = 200) -> Path:
    """A pg_dump-like plain SQL file; ``style`` "copy" (COPY ... FROM stdin, the default of
    pg_dump) or "insert" (one INSERT per row, as ``pg_dump --inserts`` writes)."""
    if style not in ("copy", "insert"):
        raise ValueError("style must be 'copy' or 'insert'")
    cols = [snake(h) for h in header]
    collist = ", ".join(cols)
    with _open(path) as f:
        f.write(
            "--\n-- PostgreSQL database dump\n--\n\n"
            "SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n"
            "SET standard_conforming_strings = on;\n"
            "SELECT pg_catalog.set_config('search_path', '', false);\n\n"
            "CREATE TABLE public.orders (\n    order_id integer NOT NULL,\n"
            "    customer_id character varying(32),\n    amount numeric(10,2) NOT NULL,\n"
            "    ordered_at timestamp without time zone\n);\n\n"
        )
        defs = ",\n".join(f"    {c} text" for c in cols)
        f.write(f"CREATE TABLE public.{table} (\n{defs}\n);\n\n")
        order_rows = _orders(orders)
        if style == "copy":
            f.write("COPY public.orders (order_id, customer_id, amount, ordered_at) FROM stdin;\n")
            f.writelines(f"{i}\t{c}\t{a}\t{t}\n" for i, c, a, t in order_rows)
            f.write("\\.\n\n")
            f.write(f"COPY public.{table} ({collist}) FROM stdin;\n")
            for chunk in _chunks(rows):
                f.write("".join("\t".join(map(_pg_copy, row)) + "\n" for row in chunk))
            f.write("\\.\n\n")
        else:
            f.writelines(
                "INSERT INTO public.orders (order_id, customer_id, amount, ordered_at) "
                f"VALUES ({i}, '{c}', {a}, '{t}');\n" for i, c, a, t in order_rows)
            for chunk in _chunks(rows):
                f.write("".join(
                    f"INSERT INTO public.{table} ({collist}) VALUES ("
                    + ", ".join(map(_pg_literal, row)) + ");\n" for row in chunk))
        f.write("\n--\n-- PostgreSQL database dump complete\n--\n")
    return Path(path)
