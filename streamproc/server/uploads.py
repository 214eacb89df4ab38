"""An uploaded image, read into memory only: a raw body with an image content type, or the ``file``
field of a multipart form. Size-capped while it arrives, within the request deadline; no name, path
or byte of a request reaches the filesystem (Starlette's own form parser spools big files to disk,
so it is not used)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

RAW_TYPES = frozenset(
    {
        "image/jpeg",
        "image/jpg",
        "image/png",
        "image/webp",
        "image/bmp",
        "image/x-ms-bmp",
        "application/octet-stream",  # format found from the bytes
        "application/x-www-form-urlencoded",  # what `curl --data-binary @photo.jpg` sends unless told
    }
)
FORM_FIELD = b"file"
# a form carrying one image needs a part or two: more parts, or longer part headers, are refused
# while the parser meets them, so a body of a million empty parts costs microseconds, not seconds
MAX_FORM_PARTS = 16
MAX_PART_HEADER_BYTES = 8192
CLIENT_GONE = 499  # nginx's "client closed request": counted in the metrics, sent to nobody


class UploadError(Exception):
    """A request that cannot carry an image: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_body(
    chunks: AsyncIterator[bytes], declared_length: str | None, limit: int, timeout: float
) -> bytes:
    """The whole body, refused (413) as soon as it passes ``limit`` bytes, (408) when it takes
    longer than ``timeout`` seconds, or (499) when the client hangs up first."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise UploadError(413, f"the body is {int(declared_length)} bytes, more than the limit of {limit}")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in chunks:
                body += chunk
                if len(body) > limit:
                    raise UploadError(413, f"the body is more than the limit of {limit} bytes")
    except TimeoutError:
        raise UploadError(408, f"the body did not arrive within {timeout:g} s") from None
    except ClientDisconnect:
        raise UploadError(CLIENT_GONE, "the client hung up before its body arrived") from None
    return bytes(body)


def image_bytes(content_type: str, body: bytes) -> bytes:
    """The image in a body of ``content_type``; UploadError (415, 400) when there is none."""
    media_type, params = parse_options_header(content_type)
    kind = media_type.decode("latin-1").lower()
    if kind in RAW_TYPES or not kind:  # no type at all: the bytes say what they are
        return body
    if kind == "multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise UploadError(400, "multipart/form-data without a boundary")
        return _form_file(boundary, body)
    raise UploadError(
        415,
        f"content type {kind}: send the image as image/jpeg, image/png, image/webp, "
        "image/bmp, or as the 'file' field of multipart/form-data",
    )


def _form_file(boundary: bytes, body: bytes) -> bytes:
    """The data of the form's ``file`` part, parsed in memory within MAX_FORM_PARTS and
    MAX_PART_HEADER_BYTES."""
    parts: list[tuple[dict[bytes, bytes], bytearray]] = []
    field, value = bytearray(), bytearray()
    header_bytes = [0]  # of the current part

    def part_begin() -> None:
        if len(parts) == MAX_FORM_PARTS:
            raise UploadError(413, f"the multipart form has more than {MAX_FORM_PARTS} parts")
        parts.append(({}, bytearray()))
        header_bytes[0] = 0

    def header_data(into: bytearray) -> Callable[[bytes, int, int], None]:
        def add(data: bytes, start: int, end: int) -> None:
            header_bytes[0] += end - start
            if header_bytes[0] > MAX_PART_HEADER_BYTES:
                raise UploadError(413, f"a multipart part's headers are over {MAX_PART_HEADER_BYTES} bytes")
            into.extend(data[start:end])

        return add

    def header_end() -> None:
        parts[-1][0][bytes(field).lower()] = bytes(value)
        field.clear()
        value.clear()

    callbacks = {
        "on_part_begin": part_begin,
        "on_part_data": lambda data, start, end: parts[-1][1].extend(data[start:end]),
        "on_header_field": header_data(field),
        "on_header_value": header_data(value),
        "on_header_end": header_end,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise UploadError(400, f"the multipart body is malformed: {exc}") from None
    for headers, data in parts:
        _, params = parse_options_header(headers.get(b"content-disposition", b""))
        if params.get(b"name") == FORM_FIELD:
            return bytes(data)
    raise UploadError(400, "the multipart form has no 'file' field with the image")
