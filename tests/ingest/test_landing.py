"""Uploads into the landing folder: streamed, hashed, size-capped and type-checked, leaving
nothing behind when refused or cut off; and the streaming multipart parser, boundary split at
every byte."""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import anyio
import pytest

from recordbank.ingest import landing
from recordbank.ingest.landing import UploadRefused
from recordbank.ingest.multipart import MalformedMultipart, MultipartParser
from recordbank.ingest.sources import file_checksum

BOUNDARY = "----rbBoundary7MA4YWxkTrZu0gW"


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


class Body:
    """An upload body in chunks; remembers how many the receiver pulled."""

    def __init__(self, data: bytes, chunk: int = 65_536, fail_after: int | None = None) -> None:
        self.chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
        self.pulled = 0
        self.fail_after = fail_after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.chunks:
            if self.fail_after is not None and self.pulled >= self.fail_after:
                raise ConnectionResetError("client went away")
            self.pulled += 1
            yield piece


def receive(body: Body, root: Path, *, max_bytes: int = 1 << 30,
            content_type: str | None = "application/octet-stream", **kw: str | None
            ) -> landing.Landed:
    async def run() -> landing.Landed:
        return await landing.receive(body.__aiter__(), landing=root, max_bytes=max_bytes,
                                     content_type=content_type, **kw)
    return anyio.run(run)


def multipart(parts: Iterable[tuple[str, str | None, bytes]], *, preamble: bytes = b"",
              epilogue: bytes = b"") -> bytes:
    out = io.BytesIO()
    out.write(preamble)
    for name, filename, data in parts:
        out.write(f"--{BOUNDARY}\r\n".encode())
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.write(f"Content-Disposition: {disp}\r\n".encode())
        out.write(b"Content-Type: application/octet-stream\r\n\r\n")
        out.write(data + b"\r\n")
    out.write(f"--{BOUNDARY}--\r\n".encode() + epilogue)
    return out.getvalue()


MP_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def test_raw_upload_lands_whole_with_its_checksum(corpus: Path, tmp_path: Path) -> None:
    src = corpus / "sakila" / "sakila-data.sql"
    data = src.read_bytes()  # 3.5 MB: several 1 MiB blocks written off the event loop
    got = receive(Body(data, chunk=65_521), tmp_path, file_name="sakila-data.sql")
    checksum, size = file_checksum(src)
    assert (got.checksum, got.size, got.file_name, got.created) == \
        (checksum, size, "sakila-data.sql", True)
    assert got.path == tmp_path / checksum / "sakila-data.sql"
    assert got.path.read_bytes() == data
    assert files_under(tmp_path) == [got.path]  # nothing left in .incoming
    again = receive(Body(data), tmp_path, file_name="sakila-data.sql")
    assert again.path == got.path and not again.created  # the file already there is kept
    assert files_under(tmp_path) == [got.path]


def test_multipart_upload_takes_the_one_file_part(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "csv-spectrum" / "csvs" / "comma_in_quotes.csv").read_bytes()
    body = multipart([("note", None, b"not a file"), ("file", "people.csv", data)],
                     preamble=b"ignored preamble\r\n", epilogue=b"ignored epilogue")
    for chunk in (1, 7, 64, len(body)):  # the boundary split everywhere
        root = tmp_path / f"c{chunk}"
        got = receive(Body(body, chunk=chunk), root, content_type=MP_TYPE)
        assert got.path.read_bytes() == data and got.file_name == "people.csv"
        assert got.checksum == hashlib.sha256(data).hexdigest()
        assert files_under(root) == [got.path]


@pytest.mark.parametrize("body, message", [
    (multipart([("a", "a.csv", b"x,y\n1,2\n"), ("b", "b.csv", b"x,y\n3,4\n")]), "second file"),
    (multipart([("field", None, b"value")]), "no file part"),
    (multipart([("a", "a.csv", b"x,y\n1,2\n")])[:-30], "before its closing boundary"),
    (b"no boundary here at all", "before its closing boundary"),
])
def test_bad_multipart_is_422_and_leaves_nothing(body: bytes, message: str,
                                                 tmp_path: Path) -> None:
    with pytest.raises(UploadRefused) as err:
        receive(Body(body, chunk=5), tmp_path, content_type=MP_TYPE)
    assert err.value.status == 422 and message in err.value.message
    assert files_under(tmp_path) == []


def test_multipart_without_boundary_is_422(tmp_path: Path) -> None:
    with pytest.raises(UploadRefused) as err:
        receive(Body(b"x"), tmp_path, content_type="multipart/form-data")
    assert err.value.status == 422 and "boundary" in err.value.message


def test_parser_passes_data_that_looks_like_a_boundary() -> None:
    tricky = b"a\r\n--" + BOUNDARY[:-1].encode() + b"\r\n--" + BOUNDARY.encode()[:5] + b"\r\nz"
    body = (f"--{BOUNDARY}\r\n\r\n").encode() + tricky + f"\r\n--{BOUNDARY}--".encode()
    for step in range(1, len(body) + 1):
        parser = MultipartParser(BOUNDARY.encode())
        events = []
        for i in range(0, len(body), step):
            events.extend(parser.feed(body[i:i + step]))
        parser.close()
        assert events[0] == ("part", {})  # a part without headers
        assert b"".join(v for k, v in events if k == "data") == tricky  # type: ignore[misc]
        assert events[-1] == ("end", None)
    with pytest.raises(MalformedMultipart):
        MultipartParser(b"b").feed(b"--b\r\nno colon here\r\n\r\ndata")
    with pytest.raises(MalformedMultipart):
        MultipartParser(b"b").feed(b"--b\r\n" + b"X-Long: " + b"v" * 20_000)


def test_over_the_size_cap_is_413_and_leaves_nothing(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "sakila" / "sakila-data.sql").read_bytes()
    body = Body(data, chunk=4096)
    with pytest.raises(UploadRefused) as err:  # counted as the bytes arrive: no length given
        receive(body, tmp_path, max_bytes=100_000, file_name="s.sql")
    assert err.value.status == 413 and err.value.code == "PAYLOAD_TOO_LARGE"
    assert body.pulled == 100_000 // 4096 + 1  # stopped at the first chunk over the cap
    lying = Body(data)
    with pytest.raises(UploadRefused) as err:  # a Content-Length under the cap changes nothing
        receive(lying, tmp_path, max_bytes=100_000, file_name="s.sql", content_length="10")
    assert err.value.status == 413
    honest = Body(data)
    with pytest.raises(UploadRefused):  # a Content-Length over it: refused before any byte
        receive(honest, tmp_path, max_bytes=100_000, file_name="s.sql",
                content_length=str(len(data)))
    assert honest.pulled == 0
    with pytest.raises(UploadRefused) as err:
        receive(Body(multipart([("f", "s.sql", data)])), tmp_path, max_bytes=100_000,
                content_type=MP_TYPE)
    assert err.value.status == 413
    assert files_under(tmp_path) == []


def test_a_cut_off_upload_leaves_nothing(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "sakila" / "sakila-data.sql").read_bytes()
    with pytest.raises(ConnectionResetError):
        receive(Body(data, chunk=1 << 19, fail_after=3), tmp_path, file_name="s.sql")
    with pytest.raises(ConnectionResetError):
        receive(Body(multipart([("f", "s.sql", data)]), chunk=1 << 19, fail_after=4),
                tmp_path, content_type=MP_TYPE)
    assert files_under(tmp_path) == []


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000


@pytest.mark.parametrize("data, kw, status", [
    (PNG, {"file_name": "people.csv"}, 415),  # the bytes say image, whatever the name says
    (b"a,b\n1,2\n", {"file_name": "setup.exe"}, 415),
    (b"a,b\n1,2\n", {"file_name": "photo.png.gz"}, 415),
    (b"a,b\n1,2\n", {"file_name": "people"}, 415),  # no extension, no data content type
    (b"a,b\n1,2\n", {}, 415),  # no name at all
    (b"a,b\n1,2\n", {"file_name": "p.csv", "content_type": "image/png"}, 415),
    (b"\x7fELF" + b"\x01" * 600, {"file_name": "p.csv"}, 415),
    (b"MZ" + b"\x00" * 600, {"file_name": "p.json"}, 415),
    (b"\x01\x02\x03\x04\x05\x06" * 200, {"file_name": "p.csv"}, 415),  # binary, no magic
    (b"<!DOCTYPE html><html><body>404</body></html>", {"file_name": "p.xml"}, 415),
    (b"", {"file_name": "p.csv"}, 422),
    (b"a,b\n", {"file_name": "../../.."}, 422),
    (b"a,b\n", {"file_name": ".hidden.csv"}, 422),
])
def test_unknown_or_bad_types_are_refused(data: bytes, kw: dict[str, str], status: int,
                                          tmp_path: Path) -> None:
    content_type = kw.pop("content_type", "application/octet-stream")
    with pytest.raises(UploadRefused) as err:
        receive(Body(data), tmp_path, content_type=content_type, **kw)
    assert err.value.status == status, err.value.message
    assert files_under(tmp_path) == []


def test_a_png_is_refused_at_its_first_bytes(tmp_path: Path) -> None:
    body = Body(PNG * 100, chunk=1024)
    with pytest.raises(UploadRefused):
        receive(body, tmp_path, file_name="people.csv")
    assert body.pulled == 1
    mp = Body(multipart([("f", "people.csv", PNG * 100)]), chunk=1024)
    with pytest.raises(UploadRefused):
        receive(mp, tmp_path, content_type=MP_TYPE)
    assert mp.pulled <= 2
    assert files_under(tmp_path) == []


def test_what_the_pipeline_reads_is_accepted(corpus: Path, tmp_path: Path) -> None:
    csv_bytes = (corpus / "csv-spectrum" / "csvs" / "utf8.csv").read_bytes()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("inner.csv", csv_bytes)
    cases = [
        (csv_bytes, {"file_name": "a.csv"}),
        (csv_bytes, {"file_name": "a.txt"}),
        (csv_bytes, {"content_type": "text/csv"}),  # named upload.csv
        (gzip.compress(csv_bytes), {"file_name": "a.csv.gz"}),
        (gzip.compress(csv_bytes), {"file_name": "a.2024.gz"}),
        (zipped.getvalue(), {"file_name": "export.zip"}),
        (b'{"name": "Ann"}\n{"name": "Bob"}\n', {"file_name": "a.ndjson"}),
        (b'<people><p name="Ann"/></people>', {"content_type": "application/xml",
                                                "file_name": "people"}),
        (b"a,b\n1,2\n", {"content_disposition": 'attachment; filename="from-header.csv"'}),
        (b"a,b\n1,2\n", {"content_disposition": "attachment; filename*=UTF-8''p%C3%A9.csv"}),
    ]
    names = []
    for data, kw in cases:
        content_type = kw.pop("content_type", "application/octet-stream")
        got = receive(Body(data), tmp_path / str(len(names)), content_type=content_type, **kw)
        assert got.path.read_bytes() == data
        names.append(got.file_name)
    assert names == ["a.csv", "a.txt", "upload.csv", "a.csv.gz", "a.2024.gz", "export.zip",
                     "a.ndjson", "people.xml", "from-header.csv", "pé.csv"]


def test_names_lose_their_folders(tmp_path: Path) -> None:
    got = receive(Body(b"a,b\n1,2\n"), tmp_path, file_name="../../etc\\evil\x00.csv")
    assert got.file_name == "evil.csv" and got.path.parent.parent == tmp_path
    long = "x" * 500 + ".csv"
    assert landing.clean_name(long) == "x" * 196 + ".csv"
