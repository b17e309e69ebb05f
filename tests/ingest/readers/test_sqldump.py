"""MySQL dump reader: the real sakila dump, value parsing, window boundaries and broken dumps."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordbank.ingest.errors import EmptyFile, NoUsableTable, UnreadableFile, UnsafeFile
from recordbank.ingest.readers import sqldump
from recordbank.ingest.readers.base import ReadOptions, Row
from recordbank.ingest.readers.tables import ROW, builtin_score, pick_table


def rows_of(path: Path, **kw: object) -> tuple[list[Row], dict[str, object]]:
    scorer = kw.pop("scorer", None)
    opts = ReadOptions(**kw)  # type: ignore[arg-type]
    out = [r for batch in sqldump.read(path, opts, scorer=scorer) for r in batch]  # type: ignore[arg-type]
    return out, opts.notes


@pytest.fixture(scope="module")
def sakila(corpus: Path) -> Path:
    return corpus / "sakila" / "sakila-data.sql"


def _tuples_after(path: Path, marker: str) -> int:
    """Independent count: the tab-indented tuple lines that follow one INSERT header."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(marker))
    count = 0
    for line in lines[start + 2:]:
        if not line.startswith("\t("):
            break
        count += 1
    return count


def test_sakila_customer_is_picked(sakila: Path) -> None:
    rows, notes = rows_of(sakila)
    assert notes["table"] == "customer"
    assert "runner-up" in str(notes["why"])
    assert isinstance(notes["scores"], dict) and "customer" in notes["scores"]
    assert len(rows) == 599 == notes["rows"]
    first = rows[0]
    assert first["first_name"] == "MARY" and first["last_name"] == "SMITH"
    assert first["email"] == "MARY.SMITH@sakilacustomer.org"
    assert first["active"] == "1"
    assert first["create_date"] == "2006-02-14 22:04:36"
    assert rows[-1]["customer_id"] == "599"


def test_sakila_builtin_scorer_agrees(sakila: Path) -> None:
    rows, notes = rows_of(sakila, scorer=builtin_score)
    assert notes["table"] == "customer" and len(rows) == 599


def test_sakila_named_table_address(sakila: Path) -> None:
    expected = _tuples_after(sakila, "INSERT INTO `address`")
    rows, notes = rows_of(sakila, table="address", batch_rows=100)
    assert len(rows) == expected == 603
    assert notes["table"] == "address" and notes["why"] == "given by name"
    assert rows[0]["address"] == "47 MySakila Drive" and rows[0]["address2"] is None


def test_sakila_scan(sakila: Path) -> None:
    tables = {t.name: t for t in sqldump.scan_tables(sakila)}
    assert sum(1 for t in tables.values() if t.approx_rows) == 16
    assert tables["payment"].approx_rows == 16049  # five INSERT statements, one table
    assert tables["customer"].columns[:3] == ["customer_id", "store_id", "first_name"]
    assert tables["customer_list"].approx_rows == 0  # a view's placeholder table
    assert tables["customer"].samples["email"][0] == "MARY.SMITH@sakilacustomer.org"
    # binary blobs stay recognisable; hex that is printable text becomes text
    staff = [r for b in sqldump.read(sakila, ReadOptions(table="staff")) for r in b]
    assert str(staff[0]["picture"]).startswith("0x")
    assert staff[0]["password"] == "8cb2237d0679ca88db6464eac60da96345513964"


MESSY = r"""-- MySQL dump 10.13
/*!40101 SET NAMES utf8mb4 */;
# a hash comment with INSERT INTO `people` VALUES (99,'ghost');
CREATE TABLE IF NOT EXISTS `people` (
  `id` int NOT NULL,
  `full name` varchar(50) DEFAULT 'a,b (c)',
  `email` varchar(80),
  `note` text,
  `blob` blob,
  PRIMARY KEY (`id`),
  KEY `k` (`email`),
  CONSTRAINT `fk` FOREIGN KEY (`id`) REFERENCES `x` (`id`)
) ENGINE=InnoDB;
INSERT INTO `people` VALUES
(1,'O\'Brien','a@x.org','tab\there\nnew \\ back \"q\" nul\0 z\Z it''s',NULL),
(2,"dq ""x"" \' y",'b@x.org','semi; colon, comma) paren',_binary'raw'),
(3,'Zoë','c@x.org',-1.5e3,0x48656C6C6F)
,(4,'bits','d@x.org',b'101',X'00FF'), (5 , 'true' , 'e@x.org' , TRUE , 0x);
/* INSERT INTO `people` VALUES (98,'ghost'); */
DELIMITER ;;
CREATE PROCEDURE p() BEGIN INSERT INTO `people` VALUES (97, 'ghost'); END ;;
DELIMITER ;
INSERT IGNORE INTO `mydb`.`people` (`email`, `id`) VALUES ('f@x.org', 6);
INSERT INTO `other` (`a`) SELECT 1;
"""


@pytest.fixture()
def messy(tmp_path: Path) -> Path:
    p = tmp_path / "messy.sql"
    p.write_text(MESSY, encoding="utf-8")
    return p


def test_value_parsing(messy: Path) -> None:
    rows, notes = rows_of(messy, table="people")
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == ["1", "2", "3", "4", "5", "6"]  # ghosts in comments/procs ignored
    assert by_id["1"]["full name"] == "O'Brien"
    assert by_id["1"]["note"] == 'tab\there\nnew \\ back "q" nul\x00 z\x1a it\'s'
    assert by_id["1"]["blob"] is None
    assert by_id["2"]["full name"] == "dq \"x\" ' y"
    assert by_id["2"]["note"] == "semi; colon, comma) paren"
    assert by_id["2"]["blob"] == "raw"
    assert by_id["3"]["full name"] == "Zoë"
    assert by_id["3"]["note"] == "-1.5e3" and by_id["3"]["blob"] == "Hello"
    assert by_id["4"]["note"] == "5" and by_id["4"]["blob"] == "0x00ff"
    assert by_id["5"]["note"] == "1" and by_id["5"]["blob"] == ""
    # a column list in another order, on a db-qualified name
    assert by_id["6"] == {"email": "f@x.org", "id": "6"}
    assert notes["rows"] == 6


def test_scan_reports_insert_select_as_problem(messy: Path) -> None:
    tables = {t.name: t for t in sqldump.scan_tables(messy)}
    assert tables["people"].approx_rows == 6
    assert tables["people"].columns == ["id", "full name", "email", "note", "blob"]
    assert tables["other"].problems == 1 and tables["other"].approx_rows == 0
    with pytest.raises(UnreadableFile, match="INSERT without VALUES"):
        rows_of(messy, table="other")


def test_tiny_window_gives_same_events(messy: Path, sakila: Path) -> None:
    """Every token boundary falls across a chunk edge somewhere: results must not change."""
    for path in (messy,):
        whole = list(sqldump.events(path))
        for chunk in (1, 2, 7, 64):
            assert list(sqldump.events(path, chunk_size=chunk)) == whole
    head = list(sqldump.events(sakila, chunk_size=4096))
    assert sum(1 for e in head if e[0] == ROW) == 47273


def test_long_value_and_window_limit(tmp_path: Path) -> None:
    big = "x" * (3 << 20)
    p = tmp_path / "long.sql"
    p.write_text(f"INSERT INTO `t` (`email`, `v`) VALUES ('a@b.c', '{big}'),('d@e.f', 'y');\n")
    rows, _ = rows_of(p, table="t")
    assert len(rows) == 2 and rows[0]["v"] == big and rows[1]["v"] == "y"
    with pytest.raises(UnsafeFile, match="exceeds"):
        list(sqldump.events(p, max_window=1 << 20))


def test_one_huge_extended_insert_streams(tmp_path: Path) -> None:
    p = tmp_path / "huge.sql"
    with p.open("w") as fh:
        fh.write("INSERT INTO `people` (`id`,`email`) VALUES ")
        fh.write(",".join(f"({i},'p{i}@example.com')" for i in range(120_000)))
        fh.write(";")  # one 3 MB line, no trailing newline
    batches = list(sqldump.read(p, ReadOptions(batch_rows=50_000)))
    assert [len(b) for b in batches] == [50_000, 50_000, 20_000]
    assert batches[-1][-1] == {"id": "119999", "email": "p119999@example.com"}


@pytest.mark.parametrize(("text", "match"), [
    ("INSERT INTO `t` VALUES (1,'abc", "unterminated string"),
    ("INSERT INTO `t` VALUES (1,'a'),", "not terminated"),
    ("INSERT INTO `t` VALUES (1,'a'),(2,", "cut off"),
    ("INSERT INTO `t` VALUES (1,'a');\n/* never closed", "unterminated /\\* comment"),
    ("CREATE TABLE `t` (`id` int,\n `name` varchar(3)", "unterminated CREATE TABLE"),
    ("SELECT 'open string;\n", "unterminated '"),
])
def test_truncated_dumps_fail_with_line(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "cut.sql"
    p.write_text(text)
    with pytest.raises(UnreadableFile, match=match) as err:
        rows_of(p, table="t")
    assert "line" in str(err.value)


def test_truncated_sakila(sakila: Path, tmp_path: Path) -> None:
    data = sakila.read_bytes()
    cut = data.index(b"'MARY.SMITH@sakilacustomer.org'") + 10
    p = tmp_path / "cut.sql"
    p.write_bytes(data[:cut])
    with pytest.raises(UnreadableFile, match="unterminated string"):
        rows_of(p)


def test_no_tables(tmp_path: Path) -> None:
    p = tmp_path / "empty.sql"
    p.write_text("-- nothing\nSET NAMES utf8;\nSELECT 1;\n")
    with pytest.raises(NoUsableTable, match="no table with rows"):
        rows_of(p)
    junk = tmp_path / "junk.sql"
    junk.write_bytes(bytes(range(256)) * 50)  # its quotes never close
    with pytest.raises(UnreadableFile, match="unterminated"):
        rows_of(junk)


def test_person_table_without_inserts(tmp_path: Path) -> None:
    p = tmp_path / "schema_only.sql"
    p.write_text("CREATE TABLE `customer` (`id` int, `email` varchar(9), `first_name` text);\n"
                 "CREATE TABLE `film` (`id` int, `title` text);\n"
                 "INSERT INTO `film` VALUES (1,'ACADEMY DINOSAUR');\n")
    with pytest.raises(NoUsableTable) as err:
        rows_of(p, scorer=builtin_score)
    assert "customer (0 rows)" in str(err.value) and "film (1 rows)" in str(err.value)
    with pytest.raises(EmptyFile, match="customer"):
        rows_of(p, table="customer")
    with pytest.raises(NoUsableTable, match="tables seen: customer, film"):
        rows_of(p, table="nope")


def test_ragged_row_in_target_table(tmp_path: Path) -> None:
    p = tmp_path / "ragged.sql"
    p.write_text("CREATE TABLE `t` (`a` int, `b` int);\nINSERT INTO `t` VALUES (1,2),(3);\n")
    with pytest.raises(UnreadableFile, match="1 values but the table has 2 columns"):
        rows_of(p, table="t")


def test_expression_values_only_fail_for_the_target(tmp_path: Path) -> None:
    p = tmp_path / "expr.sql"
    p.write_text("INSERT INTO `log` VALUES (NOW(), 'x');\n"
                 "INSERT INTO `people` (`email`, `name`) VALUES ('a@b.c', 'Ann');\n")
    rows, notes = rows_of(p, scorer=builtin_score)
    assert notes["table"] == "people" and rows == [{"email": "a@b.c", "name": "Ann"}]
    with pytest.raises(UnreadableFile, match="expressions"):
        rows_of(p, table="log")


def test_latin1_values_fall_back(tmp_path: Path) -> None:
    p = tmp_path / "latin1.sql"
    p.write_bytes("INSERT INTO `people` (`email`,`name`) VALUES ('a@b.c','Jos\u00e9');\n"
                  .encode("latin-1"))
    rows, notes = rows_of(p, table="people")
    assert rows[0]["name"] == "José" and notes["encoding_fallbacks"] == 1


def test_picker_prefers_people_and_explains() -> None:
    from recordbank.ingest.readers.tables import TableInfo

    tables = [TableInfo("film", ["film_id", "title"], 1000),
              TableInfo("staff", ["staff_id", "first_name", "email"], 2),
              TableInfo("customer", ["customer_id", "first_name", "last_name", "email",
                                     "active", "create_date"], 599)]
    notes: dict[str, object] = {}
    assert pick_table(tables, builtin_score, notes).name == "customer"
    assert notes["table"] == "customer" and "runner-up staff" in str(notes["why"])
