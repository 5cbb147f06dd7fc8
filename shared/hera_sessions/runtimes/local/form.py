"""S3-style POST uploads read as a stream: the form fields before ``file``, then the file's bytes in chunks.

The body is parsed with python-multipart's streaming parser, never held whole. As S3 does, the fields before the
file may total at most :data:`PRE_DATA_MAX` bytes, fields after the file are ignored, a part's
``Content-Transfer-Encoding`` is ignored (the raw bytes are the file), and a body without its closing boundary
is refused (``MalformedPOSTRequest``) even when the file part is complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from hera_sessions.backends.storage.local import S3Error, entity_too_large

#: S3's limit on the form fields that precede the file (names, part headers and values).
PRE_DATA_MAX = 20 * 1024
READ_SIZE = 64 * 1024


def malformed() -> S3Error:
    return S3Error(400, "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data.")


class FormUpload:
    """One multipart/form-data body read from ``stream`` (``length`` bytes), as S3 reads a POST upload."""

    def __init__(self, content_type: str, stream: BinaryIO, length: int) -> None:
        ctype, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            raise malformed()
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._part_begin,
                    "on_header_field": self._header_field,
                    "on_header_value": self._header_value,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                    "on_end": self._end,
                },
            )
        except FormParserError:
            raise malformed() from None
        self.fields: dict[str, str] = {}
        self._stream, self._remaining = stream, length
        self._state = "fields"  # then "file" (inside the file part), then "after"
        self._ended = False  # the closing boundary was read
        self._pre_data = 0
        self._field, self._value = bytearray(), bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._data = bytearray()
        self._file: list[bytes] = []  # file bytes parsed and not yet handed out

    # -- reading -----------------------------------------------------------------------------------------
    def _feed(self) -> bool:
        """Parse the next piece of the body; False once it is all read."""
        if self._remaining <= 0:
            return False
        chunk = self._stream.read(min(READ_SIZE, self._remaining))
        if not chunk:
            self._remaining = 0
            return False
        self._remaining -= len(chunk)
        try:
            self._parser.write(chunk)
        except FormParserError:
            raise malformed() from None
        return True

    def read_fields(self) -> bool:
        """Read up to the file part's data; True when a file part follows the fields."""
        while self._state == "fields" and not self._ended and self._feed():
            pass
        return self._state != "fields"

    def file_chunks(self, limit: int) -> Iterator[bytes]:
        """The file's bytes (at most ``limit``), then the rest of the body, which must close the form."""
        size = 0
        while True:
            pending, self._file = self._file, []
            for chunk in pending:
                size += len(chunk)
                if size > limit:
                    raise entity_too_large()
                yield chunk
            if not self._feed():
                break
        if not self._ended:
            raise malformed()

    def finish(self) -> None:
        """Read the rest of the body (discarding it); a body that does not close the form is malformed."""
        while self._feed():
            self._file.clear()
        if not self._ended:
            raise malformed()

    # -- the parser's callbacks --------------------------------------------------------------------------
    def _count(self, n: int) -> None:
        if self._state == "fields":
            self._pre_data += n
            if self._pre_data > PRE_DATA_MAX:
                raise S3Error(
                    400,
                    "MaxPostPreDataLengthExceeded",
                    "Your POST request fields preceding the upload file were too large.",
                )

    def _part_begin(self) -> None:
        self._headers, self._name, self._data = {}, None, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._field).strip().lower()] = bytes(self._value).strip()
        self._field, self._value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition"))
        name = params.get(b"name")
        self._name = name.decode("utf-8", "replace") if name is not None else None
        if self._state == "fields" and self._name == "file":
            self._state = "file"

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._state == "file" and self._name == "file":
            self._file.append(bytes(data[start:end]))
        elif self._state == "fields":
            self._count(end - start)
            self._data += data[start:end]

    def _part_end(self) -> None:
        if self._state == "file":
            self._state = "after"  # S3 ignores every field after the file
        elif self._state == "fields" and self._name is not None:
            try:
                self.fields[self._name] = self._data.decode()
            except UnicodeDecodeError:
                raise S3Error(400, "InvalidArgument", f"The form field {self._name!r} is not UTF-8.") from None

    def _end(self) -> None:
        self._ended = True
