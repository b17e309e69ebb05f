"""Excel reader: sheets, header finding, cell text, .xls, and files that are not workbooks."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlwt

from recordbank.ingest.errors import EmptyFile, NoUsableTable, UnreadableFile
from recordbank.ingest.readers import excel
from recordbank.ingest.readers.base import ReadOptions, Row


def rows_of(path: Path, **kw: object) -> tuple[list[Row], dict[str, object]]:
    opts = ReadOptions(**kw)  # type: ignore[arg-type]
    return [r for b in excel.read(path, opts) for r in b], opts.notes


@pytest.fixture()
def workbook(tmp_path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(["Customer list 2024"])  # a title row, then a blank row, then the header
    ws.append([])
    ws.append(["Name", "E-mail Address", "Joined", "Visits", "Active", "Last seen", "Score"])
    ws.append(["Ann Lee", "ann@x.org", dt.date(2024, 1, 31), 3, True,
               dt.datetime(2024, 2, 1, 8, 30, 5), 0.1])
    ws.append(["Bob", None, dt.date(2023, 12, 1), 12.0, False, dt.datetime(2024, 2, 2), 2.5])
    ws.append([None, None, None, None, None, None, None])  # blank line inside the data
    ws.append(["Cy", "cy@x.org", None, 4155550123, None, None, -7])
    hidden = wb.create_sheet("Secret")
    hidden.sheet_state = "hidden"
    hidden.append(["Name", "Email"])
    hidden.append(["Hidden Person", "h@x.org"])
    wb.create_sheet("Empty")
    other = wb.create_sheet("Leads")
    other.append(["Full Name", "Phone"])
    other.append(["Dee", "+44 20 7946 0000"])
    p = tmp_path / "book.xlsx"
    wb.save(p)
    return p


def test_every_visible_sheet_with_own_headers(workbook: Path) -> None:
    rows, notes = rows_of(workbook)
    assert notes["sheets"] == ["Customers", "Leads"]
    assert notes["skipped_sheets"] == {"Secret": "hidden", "Empty": "empty"}
    assert len(rows) == 4 == notes["rows"]
    assert rows[0] == {"Name": "Ann Lee", "E-mail Address": "ann@x.org", "Joined": "2024-01-31",
                       "Visits": "3", "Active": "true", "Last seen": "2024-02-01 08:30:05",
                       "Score": "0.1", "_sheet": "Customers"}
    assert rows[1]["E-mail Address"] is None and rows[1]["Visits"] == "12"
    assert rows[1]["Active"] == "false" and rows[1]["Last seen"] == "2024-02-02"
    assert rows[2]["Visits"] == "4155550123" and rows[2]["Score"] == "-7"
    assert rows[3] == {"Full Name": "Dee", "Phone": "+44 20 7946 0000", "_sheet": "Leads"}


def test_named_sheet_even_hidden(workbook: Path) -> None:
    rows, notes = rows_of(workbook, table="secret")
    assert rows == [{"Name": "Hidden Person", "Email": "h@x.org"}]
    assert notes["sheet"] == "Secret" and notes["why"] == "given by name"
    with pytest.raises(NoUsableTable, match="no sheet named 'Orders'; sheets: Customers"):
        rows_of(workbook, table="Orders")


def test_batches(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "email"])
    for i in range(25):
        ws.append([i, f"p{i}@x.org"])
    p = tmp_path / "b.xlsx"
    wb.save(p)
    batches = list(excel.read(p, ReadOptions(batch_rows=10)))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert batches[0][0] == {"id": "0", "email": "p0@x.org"}  # one sheet: no _sheet column


def test_headerless_sheet_and_duplicate_headers(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Raw"
    ws.append([1, "ann@x.org", dt.date(2024, 1, 1)])
    ws.append([2, "bob@x.org", dt.date(2024, 1, 2)])
    dup = wb.create_sheet("Dup")
    dup.append(["Name", "Name", None, "Email"])
    dup.append(["Ann", "Lee", "x", "a@x.org"])
    p = tmp_path / "h.xlsx"
    wb.save(p)
    rows, _ = rows_of(p, table="Raw")
    assert rows[0] == {"column_1": "1", "column_2": "ann@x.org", "column_3": "2024-01-01"}
    rows, _ = rows_of(p, table="Dup")
    assert rows == [{"Name": "Ann", "Name_2": "Lee", "column_3": "x", "Email": "a@x.org"}]


def test_extra_cells_beyond_the_header_are_kept(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Name", "Email"])
    ws.append(["Ann", "a@x.org"])
    ws.append(["Bob", "b@x.org", "stray note"])
    p = tmp_path / "x.xlsx"
    wb.save(p)
    rows, _ = rows_of(p)
    assert rows[1] == {"Name": "Bob", "Email": "b@x.org", "column_3": "stray note"}
    assert rows[0]["column_3"] is None


def test_xls(tmp_path: Path) -> None:
    wb = xlwt.Workbook()
    ws = wb.add_sheet("People")
    ws.write(0, 0, "Member export")
    for j, h in enumerate(["Name", "Email", "Joined", "Zip", "Balance"]):
        ws.write(2, j, h)
    ws.write(3, 0, "Ann")
    ws.write(3, 1, "ann@x.org")
    ws.write(3, 2, dt.date(2024, 1, 31), xlwt.easyxf(num_format_str="YYYY-MM-DD"))
    ws.write(3, 3, 2134)
    ws.write(3, 4, 10.25)
    p = tmp_path / "old.xls"
    wb.save(str(p))
    rows, notes = rows_of(p)
    assert rows == [{"Name": "Ann", "Email": "ann@x.org", "Joined": "2024-01-31", "Zip": "2134",
                     "Balance": "10.25"}]
    assert notes["sheet"] == "People"


@pytest.mark.parametrize(("value", "text"), [
    ("", None), ("x", "x"), (3.0, "3"), (0.1 + 0.2, "0.3"), (1e20, "1e+20"), (True, "true"),
    (7, "7"), (dt.date(2024, 1, 2), "2024-01-02"), (dt.datetime(2024, 1, 2, 0, 0), "2024-01-02"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, 600), "2024-01-02 03:04:05.000600"),
    (dt.time(8, 30), "08:30:00"), (dt.timedelta(hours=26), "1 day, 2:00:00"),
])
def test_cell_text(value: object, text: str | None) -> None:
    assert excel.cell_text(value) == text


def test_only_hidden_and_empty_sheets(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "Blank"
    h = wb.create_sheet("Data")
    h.append(["Name", "Email"])
    h.append(["A", "a@x.org"])
    h.sheet_state = "hidden"
    p = tmp_path / "hidden.xlsx"
    wb.save(p)
    with pytest.raises(EmptyFile, match=r"Data \(hidden\), Blank \(empty\)"):
        rows_of(p)


def test_header_only_sheet_is_empty(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["Name", "Email"])
    p = tmp_path / "header.xlsx"
    wb.save(p)
    with pytest.raises(EmptyFile, match="no sheet with data"):
        rows_of(p)


def test_renamed_text_file(tmp_path: Path) -> None:
    p = tmp_path / "fake.xlsx"
    p.write_text("name,email\nAnn,a@x.org\n")
    with pytest.raises(UnreadableFile, match="not an Excel workbook"):
        rows_of(p)


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "zero.xlsx"
    p.write_bytes(b"")
    with pytest.raises(EmptyFile):
        rows_of(p)


def test_truncated_xlsx(workbook: Path, tmp_path: Path) -> None:
    p = tmp_path / "cut.xlsx"
    p.write_bytes(workbook.read_bytes()[:2000])
    with pytest.raises(UnreadableFile, match="damaged"):
        rows_of(p)


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    p = tmp_path / "doc.xlsx"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(UnreadableFile, match="without Excel worksheets"):
        rows_of(p)


def test_corrupt_sheet_xml(workbook: Path, tmp_path: Path) -> None:
    p = tmp_path / "corrupt.xlsx"
    with zipfile.ZipFile(workbook) as src, zipfile.ZipFile(p, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            dst.writestr(item, data)
    with pytest.raises(UnreadableFile):
        rows_of(p)
