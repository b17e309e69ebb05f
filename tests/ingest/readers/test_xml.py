"""XML reader: record detection, flattening rules, refusal of entities, errors, flat memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recordbank.ingest.errors import EmptyFile, NoUsableTable, UnreadableFile, UnsafeFile
from recordbank.ingest.readers import xml
from recordbank.ingest.readers.base import ReadOptions, Row


def rows_of(path: Path, **kw: object) -> tuple[list[Row], dict[str, object]]:
    opts = ReadOptions(**kw)  # type: ignore[arg-type]
    return [r for b in xml.read(path, opts) for r in b], opts.notes


def write(tmp_path: Path, text: str, name: str = "f.xml", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(textwrap.dedent(text).lstrip().encode(encoding))
    return p


PEOPLE = """
<?xml version="1.0" encoding="UTF-8"?>
<!-- exported 2024-01-01 -->
<export xmlns="urn:example:crm" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <meta><generated>2024-01-01</generated><count>3</count></meta>
  <people>
    <person id="1" status="active">
      <name>Ann Lee</name>
      <email>ann@example.com</email>
      <phone>+1 555 0100</phone>
      <phone type="work">+1 555 0101</phone>
      <phone>+1 555 0102</phone>
      <address><street>1 Main St</street><city>Springfield</city></address>
      <note/>
      <age xsi:nil="true"/>
    </person>
    <person id="2"><name><![CDATA[Bob & <Co>]]></name><email>bob@example.com</email>
      <!-- x --></person>
    <person id="3"><name>Zoë</name><?pi ignored?></person>
  </people>
</export>
"""


def test_people_records_and_fields(tmp_path: Path) -> None:
    rows, notes = rows_of(write(tmp_path, PEOPLE))
    assert notes["record_element"] == "person"
    assert notes["record_path"] == "/export/people/person"
    assert "repeats 3 times" in str(notes["why"]) and notes["rows"] == 3
    assert rows[0] == {
        "@id": "1", "@status": "active", "name": "Ann Lee", "email": "ann@example.com",
        "phone": "+1 555 0100", "phone.2.@type": "work", "phone.2": "+1 555 0101",
        "phone.3": "+1 555 0102", "address.street": "1 Main St", "address.city": "Springfield",
        "note": None, "age": None,
    }
    assert rows[1] == {"@id": "2", "name": "Bob & <Co>", "email": "bob@example.com"}
    assert rows[2] == {"@id": "3", "name": "Zoë"}


def test_nested_wrappers_and_batches(tmp_path: Path) -> None:
    body = "".join(f"<record><email>p{i}@x.org</email><tags><tag>a</tag><tag>b</tag></tags>"
                   f"</record>" for i in range(25))
    p = write(tmp_path, f"<root><records>{body}</records></root>")
    batches = list(xml.read(p, ReadOptions(batch_rows=10)))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert batches[0][0] == {"email": "p0@x.org", "tags.tag": "a", "tags.tag.2": "b"}


def test_single_record_and_text_records(tmp_path: Path) -> None:
    one = write(tmp_path, "<people><person><name>A</name><email>a@x</email></person></people>")
    rows, notes = rows_of(one)
    assert rows == [{"name": "A", "email": "a@x"}] and notes["record_element"] == "person"
    root_only = write(tmp_path, "<person><name>A</name><email>a@x</email></person>", "r.xml")
    assert rows_of(root_only)[0] == [{"name": "A", "email": "a@x"}]
    emails = write(tmp_path, "<emails><email>a@x</email><email>b@x</email></emails>", "e.xml")
    assert rows_of(emails)[0] == [{"email": "a@x"}, {"email": "b@x"}]


def test_record_element_given(tmp_path: Path) -> None:
    p = write(tmp_path, PEOPLE)
    rows, notes = rows_of(p, table="address")
    assert rows[0] == {"street": "1 Main St", "city": "Springfield"}
    assert notes["why"] == "given: address"
    with pytest.raises(NoUsableTable, match="no <customer> element.*person"):
        rows_of(p, table="customer")


def test_same_tag_nested_inside_record_is_not_a_record(tmp_path: Path) -> None:
    p = write(tmp_path, "<items><item><name>a</name><item>inner</item></item>"
                        "<item><name>b</name></item></items>")
    rows, _ = rows_of(p)
    assert rows == [{"name": "a", "item": "inner"}, {"name": "b"}]


BOMB = """
<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz><lol>&lol3;</lol><lol>&lol3;</lol></lolz>
"""
XXE = """
<?xml version="1.0"?>
<!DOCTYPE people [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<people><person><name>&xxe;</name></person><person><name>b</name></person></people>
"""
PARAM = """
<?xml version="1.0"?>
<!DOCTYPE people [<!ENTITY % ext SYSTEM "file:///etc/passwd"> %ext;]>
<people><person><name>a</name></person></people>
"""
EXTERNAL_DTD = """
<?xml version="1.0"?>
<!DOCTYPE people SYSTEM "file:///etc/passwd">
<people><person><name>&xxe;</name></person><person><name>b</name></person></people>
"""


@pytest.mark.parametrize("text", [BOMB, XXE, PARAM, EXTERNAL_DTD])
def test_entities_are_refused(tmp_path: Path, text: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(UnsafeFile, match="entit") as err:
        rows_of(p)
    assert "root:" not in str(err.value)  # nothing of /etc/passwd leaks into the message


def test_utf16_xxe_is_refused(tmp_path: Path) -> None:
    text = XXE.replace('encoding="UTF-8"', "")
    p = tmp_path / "u16.xml"
    p.write_bytes(textwrap.dedent(text).lstrip().replace('<?xml version="1.0"?>',
                  '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16"))
    with pytest.raises(UnsafeFile):
        rows_of(p)


def test_passwd_never_appears_with_given_element(tmp_path: Path) -> None:
    p = write(tmp_path, EXTERNAL_DTD)
    try:
        rows, _ = rows_of(p, table="name")
    except UnsafeFile:
        return
    assert all("root:" not in str(v) for r in rows for v in r.values())


def test_doctype_without_entities_is_fine(tmp_path: Path) -> None:
    p = write(tmp_path, '<!DOCTYPE people [<!ELEMENT people ANY>]>\n'
                        "<people><person><name>a</name></person><person><name>b</name></person>"
                        "</people>")
    assert [r["name"] for r in rows_of(p)[0]] == ["a", "b"]


def test_malformed_mid_file_reports_line(tmp_path: Path) -> None:
    good = "".join(f"<person><name>n{i}</name></person>\n" for i in range(100))
    p = write(tmp_path, f"<people>\n{good}<person><name>x</nam></person>\n{good}</people>")
    with pytest.raises(UnreadableFile, match="line 102"):
        rows_of(p)


def test_truncated_file(tmp_path: Path) -> None:
    p = write(tmp_path, "<people><person><name>a</name></person><person><name>b</na")
    with pytest.raises(UnreadableFile, match="malformed XML at line 1"):
        rows_of(p)


@pytest.mark.parametrize("text", ["", "   \n", "<?xml version='1.0'?>\n<!-- nothing -->\n"])
def test_empty(tmp_path: Path, text: str) -> None:
    p = tmp_path / "e.xml"
    p.write_text(text)
    with pytest.raises(EmptyFile):
        rows_of(p)


def test_root_without_records(tmp_path: Path) -> None:
    p = write(tmp_path, "<people/>")
    with pytest.raises(EmptyFile, match="no records"):
        rows_of(p)


def test_not_xml(tmp_path: Path) -> None:
    p = tmp_path / "x.xml"
    p.write_text("name,email\nAnn,a@x\n")
    with pytest.raises(UnreadableFile, match="malformed XML"):
        rows_of(p)


MEMORY_PROBE = """
import resource, sys
from recordbank.ingest.readers import xml
from recordbank.ingest.readers.base import ReadOptions
n = int(sys.argv[2])
with open(sys.argv[1], "w") as f:
    f.write("<people>\\n")
    for i in range(n):
        f.write(f'<person id="{i}"><name>Person {i}</name><email>p{i}@example.com</email>'
                f'<address><street>{i} Main St</street><city>Town</city></address></person>\\n')
    f.write("</people>\\n")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = sum(len(b) for b in xml.read(sys.argv[1], ReadOptions(batch_rows=5000)))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(rows, (after - before) // 1024)
"""


def test_memory_stays_flat_for_200k_records(tmp_path: Path) -> None:
    """RSS growth while reading 200k records must match that of 20k (the tree is pruned)."""
    growth = {}
    for n in (20_000, 200_000):
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tmp_path / f"{n}.xml"),
                              str(n)], capture_output=True, text=True, check=True)
        rows, mib = map(int, out.stdout.split())
        assert rows == n
        growth[n] = mib
    # an unpruned tree of 200k records would take hundreds of MiB
    assert growth[200_000] - growth[20_000] < 25, growth
