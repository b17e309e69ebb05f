"""PostgreSQL plain dump reader: COPY blocks, INSERT forms, table picking and broken dumps."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordbank.ingest.errors import EmptyFile, NoUsableTable, UnreadableFile
from recordbank.ingest.readers import pgdump
from recordbank.ingest.readers.base import ReadOptions, Row
from recordbank.ingest.readers.tables import builtin_score

PG_DUMP = r"""--
-- PostgreSQL database dump
--

-- Dumped from database version 16.2 (Debian 16.2-1.pgdg120+2)
-- Dumped by pg_dump version 16.2 (Debian 16.2-1.pgdg120+2)

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;

CREATE SCHEMA "Sales";

CREATE FUNCTION public.last_updated() RETURNS trigger
    LANGUAGE plpgsql
    AS $_$
BEGIN
    NEW.last_update = CURRENT_TIMESTAMP; -- it's fine
    INSERT INTO public.customer VALUES (0, 'ghost', 'in', 'a function', true, '2000-01-01');
    RETURN NEW;
END $_$;

CREATE TABLE public.customer (
    customer_id integer DEFAULT nextval('public.customer_customer_id_seq'::regclass) NOT NULL,
    "First Name" character varying(45) NOT NULL,
    last_name character varying(45) NOT NULL,
    email character varying(50),
    active boolean DEFAULT true NOT NULL,
    create_date date DEFAULT ('now'::text)::date NOT NULL,
    CONSTRAINT customer_email_check CHECK ((email)::text <> ''::text)
);

CREATE TABLE public.film (
    film_id integer NOT NULL,
    title text NOT NULL
);

CREATE TABLE "Sales"."Empty Table" (
    id integer
);

COMMENT ON TABLE public.film IS 'it''s a film; COPY x FROM stdin;';

--
-- Data for Name: customer; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.customer (customer_id, "First Name", last_name, email, active, create_date) FROM stdin;
1	MARY	SMITH	MARY.SMITH@sakilacustomer.org	t	2006-02-14
2	Zoë	O'Brien	\N	f	2006-02-15
3	Tab\there	New\nLine	back\\slash@x.org	t	2006-02-16
4	Oct\101l	x\x41y	\N	t	\N
\.


COPY public.film (film_id, title) FROM stdin;
1	ACADEMY DINOSAUR
\.


COPY "Sales"."Empty Table" (id) FROM stdin;
\.


INSERT INTO public.film (film_id, title) VALUES (2, 'ACE ''GOLDFINGER''');
INSERT INTO public.film VALUES (3, E'line\nbreak \x41 \101 \\ it\'s \u00e9'), (4, NULL);
INSERT INTO public.film (film_id, title) VALUES (5, '2006-02-14'::date),
    (-6, 'C:\path'::character varying(20)), (7.5, 'x'::timestamp(6) without time zone);

ALTER TABLE ONLY public.customer
    ADD CONSTRAINT customer_pkey PRIMARY KEY (customer_id);

--
-- PostgreSQL database dump complete
--
"""


def rows_of(path: Path, table: str | None = None,
            **kw: object) -> tuple[list[Row], dict[str, object]]:
    opts = ReadOptions(table=table, **kw)  # type: ignore[arg-type]
    return [r for b in pgdump.read(path, opts, scorer=builtin_score) for r in b], opts.notes


@pytest.fixture()
def dump(tmp_path: Path) -> Path:
    p = tmp_path / "shop.sql"
    p.write_text(PG_DUMP, encoding="utf-8")
    return p


def test_picks_customer_and_reads_copy(dump: Path) -> None:
    rows, notes = rows_of(dump)
    assert notes["table"] == "customer" and notes["schema"] == "public"
    assert "runner-up public.film" in str(notes["why"])
    assert notes["tables"] == ["public.customer", "public.film", "Sales.Empty Table"]
    assert len(rows) == 4
    assert rows[0] == {"customer_id": "1", "First Name": "MARY", "last_name": "SMITH",
                       "email": "MARY.SMITH@sakilacustomer.org", "active": "t",
                       "create_date": "2006-02-14"}
    assert rows[1]["First Name"] == "Zoë" and rows[1]["last_name"] == "O'Brien"
    assert rows[1]["email"] is None
    assert rows[2]["First Name"] == "Tab\there" and rows[2]["last_name"] == "New\nLine"
    assert rows[2]["email"] == "back\\slash@x.org"
    assert rows[3]["First Name"] == "OctAl" and rows[3]["last_name"] == "xAy"
    assert rows[3]["create_date"] is None


def test_default_scorer_also_picks_customer(dump: Path) -> None:
    opts = ReadOptions()
    rows = [r for b in pgdump.read(dump, opts) for r in b]
    assert opts.notes["table"] == "customer" and len(rows) == 4


def test_insert_forms(dump: Path) -> None:
    rows, notes = rows_of(dump, "film")
    titles = {r["film_id"]: r["title"] for r in rows}
    assert titles == {
        "1": "ACADEMY DINOSAUR",
        "2": "ACE 'GOLDFINGER'",
        "3": "line\nbreak A A \\ it's é",
        "4": None,
        "5": "2006-02-14",
        "-6": "C:\\path",  # standard strings keep backslashes
        "7.5": "x",
    }
    assert notes["rows"] == 7


@pytest.mark.parametrize("name", ["public.film", "FILM", "film", "Public.Film"])
def test_table_names_resolve(dump: Path, name: str) -> None:
    rows, _ = rows_of(dump, name)
    assert len(rows) == 7


def test_zero_row_and_missing_tables(dump: Path) -> None:
    with pytest.raises(EmptyFile, match="no rows"):
        rows_of(dump, "Sales.Empty Table")
    with pytest.raises(NoUsableTable, match="tables seen: public.customer"):
        rows_of(dump, "orders")


def test_scan(dump: Path) -> None:
    info = {t.qualified: t for t in pgdump.scan_tables(dump)}
    assert info["public.customer"].approx_rows == 4  # the INSERT in the function body is skipped
    assert info["public.customer"].columns[1] == "First Name"
    empty = info["Sales.Empty Table"]
    assert empty.approx_rows == 0 and empty.columns == ["id"]


def test_tiny_window_gives_same_events(dump: Path) -> None:
    whole = list(pgdump.events(dump))
    for chunk in (1, 3, 16):
        assert list(pgdump.events(dump, chunk_size=chunk)) == whole


def test_standard_conforming_strings_off(tmp_path: Path) -> None:
    p = tmp_path / "old.sql"
    p.write_text("SET standard_conforming_strings = off;\n"
                 "INSERT INTO people (email, name) VALUES ('a@b.c', 'O\\'Hara\\tX');\n")
    rows, _ = rows_of(p, "people")
    assert rows == [{"email": "a@b.c", "name": "O'Hara\tX"}]


def test_insert_without_columns_uses_create_table(tmp_path: Path) -> None:
    p = tmp_path / "ins.sql"
    p.write_text('CREATE TABLE public.people ("E-mail" text, full_name text, active boolean);\n'
                 "INSERT INTO public.people VALUES ('a@b.c', 'Ann', true);\n"
                 "INSERT INTO public.people VALUES ('d@e.f', 'Bob', FALSE)\n"
                 "  ON CONFLICT DO NOTHING;\n")
    rows, notes = rows_of(p)
    assert notes["table"] == "people"
    assert rows == [{"E-mail": "a@b.c", "full_name": "Ann", "active": "true"},
                    {"E-mail": "d@e.f", "full_name": "Bob", "active": "false"}]


def test_copy_rows_with_crlf_and_big_block(tmp_path: Path) -> None:
    p = tmp_path / "big.sql"
    with p.open("wb") as fh:
        fh.write(b"COPY public.people (id, email) FROM stdin;\r\n")
        for i in range(30_000):
            fh.write(f"{i}\tp{i}@example.com\r\n".encode())
        fh.write(b"\\.\r\n")
    batches = list(pgdump.read(p, ReadOptions(table="people", batch_rows=10_000)))
    assert [len(b) for b in batches] == [10_000, 10_000, 10_000]
    assert batches[2][-1] == {"id": "29999", "email": "p29999@example.com"}


@pytest.mark.parametrize(("text", "match"), [
    ("COPY public.people (id, email) FROM stdin;\n1\ta@b.c\n2\td@e.f\n", "not terminated by"),
    ("COPY public.people (id, email) FROM stdin;\n", "not terminated by"),
    ("INSERT INTO public.people (id, email) VALUES (1, 'a@b.c", "unterminated string"),
    ("INSERT INTO public.people (id, email) VALUES (1, 'a@b.c'),", "not terminated"),
    ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; ", "unterminated \\$\\$"),
])
def test_truncated(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "cut.sql"
    p.write_text(text)
    with pytest.raises(UnreadableFile, match=match) as err:
        rows_of(p, "people")
    assert "line" in str(err.value)


def test_ragged_copy_row(tmp_path: Path) -> None:
    p = tmp_path / "ragged.sql"
    p.write_text("COPY public.people (id, email) FROM stdin;\n1\ta@b.c\n2\n\\.\n")
    with pytest.raises(UnreadableFile, match="1 values but the table has 2 columns"):
        rows_of(p, "people")


def test_copy_with_options_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "csv.sql"
    p.write_text("COPY public.people (id, email) FROM stdin WITH (FORMAT csv);\n1,a@b.c\n\\.\n"
                 "COPY public.film (id, title) FROM stdin;\n1\tX\n\\.\n")
    with pytest.raises(UnreadableFile, match="not supported"):
        rows_of(p, "people")
    rows, _ = rows_of(p, "film")  # the block was skipped cleanly
    assert rows == [{"id": "1", "title": "X"}]


def test_no_tables(tmp_path: Path) -> None:
    p = tmp_path / "none.sql"
    p.write_text("SET client_encoding = 'UTF8';\nCREATE SCHEMA s;\n")
    with pytest.raises(NoUsableTable, match="no table with rows"):
        rows_of(p)
    q = tmp_path / "schema_only.sql"
    q.write_text("CREATE TABLE public.customer (id int, email text, first_name text);\n")
    with pytest.raises(NoUsableTable, match="public.customer \\(0 rows\\)"):
        rows_of(q)
