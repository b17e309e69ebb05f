"""compression.py: magic-byte sniffing and safe unpacking (caps, traversal, truncation)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import time
import zipfile
from pathlib import Path

import pytest
import zstandard

from recordbank.ingest.compression import decompress_to, sniff_compression
from recordbank.ingest.errors import UnreadableFile, UnsafeFile, UnsupportedFormat

PAYLOAD = ("email,name\n" + "".join(f"p{i}@example.com,Person {i}\n" for i in range(5000))).encode()

COMPRESSORS = {
    "gzip": gzip.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "bz2": bz2.compress,
    "xz": lzma.compress,
}


def _files(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_round_trip_with_misleading_name(tmp_path: Path, kind: str) -> None:
    src = tmp_path / "people.txt"  # the extension says nothing about the compression
    src.write_bytes(COMPRESSORS[kind](PAYLOAD))
    assert sniff_compression(src) == kind
    out = decompress_to(src, tmp_path / "out", max_bytes=10 << 20, max_ratio=100)
    assert len(out) == 1 and out[0].read_bytes() == PAYLOAD
    assert out[0].parent == tmp_path / "out"


def test_output_name_drops_the_compression_extension(tmp_path: Path) -> None:
    src = tmp_path / "people.csv.gz"
    src.write_bytes(gzip.compress(PAYLOAD))
    (out,) = decompress_to(src, tmp_path / "out")
    assert out.name == "people.csv"


def test_sniff_plain_files_and_xlsx(tmp_path: Path) -> None:
    plain = tmp_path / "a.gz"
    plain.write_bytes(b"a,b\n1,2\n")
    assert sniff_compression(plain) is None
    xlsx = tmp_path / "book.zip"
    with zipfile.ZipFile(xlsx, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    assert sniff_compression(xlsx) is None  # a workbook is a format, not an archive
    with pytest.raises(UnsupportedFormat):
        decompress_to(plain, tmp_path / "out")


def test_multi_member_gzip(tmp_path: Path) -> None:
    src = tmp_path / "parts.gz"
    src.write_bytes(gzip.compress(b"a,b\n") + gzip.compress(b"1,2\n") + gzip.compress(b"3,4\n"))
    (out,) = decompress_to(src, tmp_path / "out")
    assert out.read_bytes() == b"a,b\n1,2\n3,4\n"


def test_multi_frame_zstd(tmp_path: Path) -> None:
    c = zstandard.ZstdCompressor(write_checksum=True)
    src = tmp_path / "parts.zst"
    src.write_bytes(c.compress(b"a,b\n") + c.compress(b"1,2\n"))
    (out,) = decompress_to(src, tmp_path / "out")
    assert out.read_bytes() == b"a,b\n1,2\n"


def test_zip_members_dirs_skipped_and_traversal_contained(tmp_path: Path) -> None:
    src = tmp_path / "export.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data/", "")
        zf.writestr("data/a.csv", b"a\n1\n")
        zf.writestr("../../evil.csv", b"x\n")
        zf.writestr("/abs/b.csv", b"b\n2\n")
        zf.writestr("__MACOSX/._a.csv", b"junk")
        zf.writestr("nested.csv.gz", gzip.compress(b"n\n1\n"))
    dest = tmp_path / "deep" / "out"
    out = decompress_to(src, dest)
    rel = sorted(p.relative_to(dest).as_posix() for p in out)
    assert rel == ["abs/b.csv", "data/a.csv", "evil.csv", "nested.csv.gz"]
    assert sorted(out) == _files(dest)
    assert not (tmp_path / "evil.csv").exists() and not (tmp_path / "deep" / "evil.csv").exists()
    # A nested archive stays compressed: the caller sniffs it again.
    assert sniff_compression(dest / "nested.csv.gz") == "gzip"


def test_zip_members_with_clashing_names_both_kept(tmp_path: Path) -> None:
    src = tmp_path / "clash.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("a.csv", b"1\n")
        zf.writestr("../a.csv", b"2\n")
    out = decompress_to(src, tmp_path / "out")
    assert sorted(p.read_bytes() for p in out) == [b"1\n", b"2\n"]


def test_truncated_gzip_is_an_error_not_a_short_file(tmp_path: Path) -> None:
    data = gzip.compress(os.urandom(1 << 20))
    src = tmp_path / "cut.csv.gz"
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableFile, match="truncated"):
        decompress_to(src, tmp_path / "out")
    assert _files(tmp_path / "out") == []  # nothing half-written left behind


def test_truncated_gzip_trailer(tmp_path: Path) -> None:
    data = gzip.compress(PAYLOAD)
    src = tmp_path / "cut.gz"
    src.write_bytes(data[:-4])  # the size field of the trailer is missing
    with pytest.raises(UnreadableFile):
        decompress_to(src, tmp_path / "out")


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_zstd(tmp_path: Path, keep: float) -> None:
    data = zstandard.ZstdCompressor().compress(PAYLOAD * 20)
    src = tmp_path / "cut.zst"
    src.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(UnreadableFile, match="truncated"):
        decompress_to(src, tmp_path / "out")
    assert _files(tmp_path / "out") == []


def test_truncated_streamed_zstd_without_content_size(tmp_path: Path) -> None:
    cobj = zstandard.ZstdCompressor().compressobj()
    data = cobj.compress(PAYLOAD * 20) + cobj.flush()
    src = tmp_path / "cut.zst"
    src.write_bytes(data[:-3])
    with pytest.raises(UnreadableFile):
        decompress_to(src, tmp_path / "out")


@pytest.mark.parametrize("kind", ["bz2", "xz"])
def test_truncated_bz2_xz(tmp_path: Path, kind: str) -> None:
    data = COMPRESSORS[kind](PAYLOAD)
    src = tmp_path / f"cut.{kind}"
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableFile):
        decompress_to(src, tmp_path / "out")


def test_corrupt_gzip_body(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(PAYLOAD))
    for i in range(40, 60):
        data[i] ^= 0xFF
    src = tmp_path / "bad.gz"
    src.write_bytes(bytes(data))
    with pytest.raises(UnreadableFile):
        decompress_to(src, tmp_path / "out")


def test_truncated_and_corrupt_zip(tmp_path: Path) -> None:
    src = tmp_path / "a.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", PAYLOAD)
    data = src.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    assert sniff_compression(cut) == "zip"
    with pytest.raises(UnreadableFile):
        decompress_to(cut, tmp_path / "out1")
    bad = bytearray(data)
    bad[60:80] = b"\x00" * 20  # inside the deflate stream: CRC or inflate fails
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(bad))
    with pytest.raises(UnreadableFile):
        decompress_to(corrupt, tmp_path / "out2")
    assert _files(tmp_path / "out2") == []


def _zeros_gzip(path: Path, size: int) -> None:
    block = b"\x00" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as fh:
        for _ in range(size >> 20):
            fh.write(block)


def test_gzip_bomb_refused_quickly_by_ratio(tmp_path: Path) -> None:
    src = tmp_path / "bomb.csv.gz"
    _zeros_gzip(src, 200 << 20)
    assert src.stat().st_size < 1 << 20
    start = time.perf_counter()
    with pytest.raises(UnsafeFile, match="ratio"):
        decompress_to(src, tmp_path / "out", max_bytes=1 << 40, max_ratio=100)
    assert time.perf_counter() - start < 10  # stops long before 200 MB
    assert _files(tmp_path / "out") == []


def test_size_cap_is_exact_and_checked_before_writing(tmp_path: Path) -> None:
    src = tmp_path / "p.gz"
    src.write_bytes(gzip.compress(PAYLOAD))
    (out,) = decompress_to(src, tmp_path / "ok", max_bytes=len(PAYLOAD))
    assert out.stat().st_size == len(PAYLOAD)
    with pytest.raises(UnsafeFile, match="limit"):
        decompress_to(src, tmp_path / "over", max_bytes=len(PAYLOAD) - 1)
    assert _files(tmp_path / "over") == []


def test_small_file_with_high_ratio_passes_the_grace(tmp_path: Path) -> None:
    src = tmp_path / "z.gz"
    src.write_bytes(gzip.compress(b"\x00" * (1 << 20)))  # ratio ~1000 but only 1 MB
    (out,) = decompress_to(src, tmp_path / "out", max_ratio=10)
    assert out.stat().st_size == 1 << 20


@pytest.mark.parametrize("kind", ["zstd", "bz2", "xz"])
def test_bombs_in_other_codecs(tmp_path: Path, kind: str) -> None:
    src = tmp_path / "bomb"
    src.write_bytes(COMPRESSORS[kind](b"\x00" * (64 << 20)))
    with pytest.raises(UnsafeFile):
        decompress_to(src, tmp_path / "out", max_ratio=100)
    assert _files(tmp_path / "out") == []


def test_zip_bomb_member_and_total_cap(tmp_path: Path) -> None:
    src = tmp_path / "bomb.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.csv", PAYLOAD)
        zf.writestr("zeros.csv", b"\x00" * (64 << 20))
    with pytest.raises(UnsafeFile):
        decompress_to(src, tmp_path / "out", max_ratio=100)
    assert _files(tmp_path / "out") == []  # the good member written first is removed too
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(5):
            zf.writestr(f"m{i}.csv", PAYLOAD)
    with pytest.raises(UnsafeFile, match="limit"):
        decompress_to(many, tmp_path / "out2", max_bytes=3 * len(PAYLOAD))


def test_encrypted_zip_member(tmp_path: Path) -> None:
    src = tmp_path / "enc.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("a.csv", b"a\n1\n")
    data = bytearray(src.read_bytes())
    # Set the "encrypted" flag bit in both the local header and the central directory.
    data[6] |= 1
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 8] |= 1
    src.write_bytes(bytes(data))
    with pytest.raises(UnreadableFile, match="encrypted"):
        decompress_to(src, tmp_path / "out")


def test_zip_member_with_overlong_name(tmp_path: Path) -> None:
    src = tmp_path / "long.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("d" * 300 + "/" + "n" * 400 + ".csv", b"a\n1\n")
    (out,) = decompress_to(src, tmp_path / "out")
    assert out.suffix == ".csv" and out.read_bytes() == b"a\n1\n"
