"""An incremental multipart/form-data parser (RFC 7578 / RFC 2046) for uploads of any size.

Part bodies pass through as they arrive and are never held whole: only the last bytes that
could be the start of a boundary wait for the next chunk. Part headers are bounded
(MAX_HEADER_BYTES); the preamble and epilogue are skipped.
"""

from __future__ import annotations

from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Final, Literal

MAX_HEADER_BYTES: Final = 16 * 1024
MAX_BOUNDARY: Final = 70  # RFC 2046

Event = tuple[Literal["part"], dict[str, str]] | tuple[Literal["data"], bytes] | \
    tuple[Literal["end"], None]


class MalformedMultipart(ValueError):
    """The body is not the multipart message its Content-Type announced."""


def header_params(header: str, value: str) -> Message:
    """A header with its parameters parsed (quoted strings, RFC 2231 `filename*=`)."""
    msg = Message()
    msg[header] = value
    return msg


def boundary_of(content_type: str) -> bytes:
    raw = header_params("content-type", content_type).get_param("boundary",
                                                                  header="content-type")
    boundary = collapse_rfc2231_value(raw) if raw else ""
    if not 1 <= len(boundary) <= MAX_BOUNDARY or not boundary.isascii():
        raise MalformedMultipart("multipart/form-data without a valid boundary parameter")
    return boundary.encode("ascii")


def disposition(value: str) -> tuple[str | None, str | None]:
    """(name, filename) of a Content-Disposition header; either may be None."""
    msg = header_params("content-disposition", value)
    name = msg.get_param("name", header="content-disposition")
    filename = msg.get_filename()
    return (collapse_rfc2231_value(name) if name else None), filename


class MultipartParser:
    """feed() bytes, get events: ("part", headers) opens a part, ("data", bytes) continues
    it, ("end", None) closes the message. close() checks that the message was complete."""

    def __init__(self, boundary: bytes) -> None:
        self._delimiter = b"\r\n--" + boundary
        # The first delimiter may open the body without a CRLF before it: pretend there was one.
        self._buf = b"\r\n"
        self._state = "preamble"

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        out: list[Event] = []
        delim = self._delimiter
        while True:
            if self._state == "preamble":
                at = self._buf.find(delim)
                if at < 0:
                    self._buf = self._buf[-(len(delim) - 1):]
                    return out
                self._buf = self._buf[at + len(delim):]
                self._state = "after-delimiter"
            elif self._state == "after-delimiter":
                if len(self._buf) < 2:
                    return out
                if self._buf.startswith(b"--"):
                    self._state, self._buf = "end", b""
                    out.append(("end", None))
                    return out
                eol = self._buf.find(b"\r\n")
                if eol < 0:
                    if len(self._buf) > 256:
                        raise MalformedMultipart("garbage after a multipart boundary")
                    return out
                if self._buf[:eol].strip(b" \t"):  # only transport padding may follow
                    raise MalformedMultipart("garbage after a multipart boundary")
                self._buf = self._buf[eol + 2:]
                self._state = "headers"
            elif self._state == "headers":
                if self._buf.startswith(b"\r\n"):  # a part without headers
                    end, skip = 0, 2
                else:
                    end, skip = self._buf.find(b"\r\n\r\n"), 4
                if end < 0:
                    if len(self._buf) > MAX_HEADER_BYTES:
                        raise MalformedMultipart("multipart part headers too long")
                    return out
                out.append(("part", _headers(self._buf[:end])))
                self._buf = self._buf[end + skip:]
                self._state = "body"
            elif self._state == "body":
                at = self._buf.find(delim)
                if at < 0:
                    keep = len(delim) - 1  # may be the start of a delimiter
                    if len(self._buf) > keep:
                        out.append(("data", self._buf[:-keep]))
                        self._buf = self._buf[-keep:]
                    return out
                if at:
                    out.append(("data", self._buf[:at]))
                self._buf = self._buf[at + len(delim):]
                self._state = "after-delimiter"
            else:  # the epilogue: ignored
                self._buf = b""
                return out

    def close(self) -> None:
        if self._state != "end":
            raise MalformedMultipart("the multipart body ends before its closing boundary")


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n") if block else ():
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise MalformedMultipart("a malformed multipart part header")
        # Browsers send non-ASCII file names as raw UTF-8.
        headers[name.strip().decode("latin-1").lower()] = value.strip().decode("utf-8",
                                                                               "replace")
    return headers
