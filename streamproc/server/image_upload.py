"""An uploaded image, received and checked before any decoding: the checks every image endpoint of
the API shares (``POST /api/v1/detect``, and any other that takes an image). Each limit is from
``http.api``: body size and time, form parts and part headers, format, pixel count and JPEG scans
read from the header. What costs more than reading the bytes (parsing a form, walking the header)
runs in a thread, off the event loop; decoding comes later, in a worker's decoder process under
``http.api.cpu_budget_s``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from streamproc.config.settings import DetectApiSettings, HttpSettings
from streamproc.media.still_images import ImageError, ImageHeader, read_header
from streamproc.server.uploads import CLIENT_GONE, UploadError, image_bytes, read_body

MB = 1024 * 1024
IMAGE_ERROR_STATUS = {"format": 415, "damaged": 400, "too_big": 413, "costly": 422}
T = TypeVar("T")


@dataclass(frozen=True)
class Upload:
    data: bytes
    header: ImageHeader


async def receive_image(request: Request, settings: HttpSettings) -> Upload:
    """The request's image, every limit checked; UploadError (status, one line) when one is not met."""
    body = await read_body(
        request.stream(),
        request.headers.get("content-length"),
        int(settings.api.max_body_mb * MB),
        settings.request_timeout,
    )
    return await asyncio.to_thread(check_image, request.headers.get("content-type", ""), body, settings.api)


def check_image(content_type: str, body: bytes, api: DetectApiSettings) -> Upload:
    """The image in ``body`` and its header, within the API's limits; UploadError otherwise."""
    data = image_bytes(content_type, body)
    try:
        header = read_header(data)
    except ImageError as exc:
        raise UploadError(IMAGE_ERROR_STATUS[exc.kind], str(exc)) from None
    if header.pixels > api.max_megapixels * 1e6:
        raise UploadError(
            413, f"the image is {header.width}x{header.height}, more than {api.max_megapixels:g} megapixels"
        )
    if header.scans > api.max_scans:
        raise UploadError(
            422,
            f"the JPEG has {header.scans} scans, more than http.api.max_scans ({api.max_scans}): "
            "each scan is a pass over every pixel",
        )
    return Upload(data, header)


async def result_unless_gone(request: Request, future: Future[T], cancel: Callable[[Future[T]], None]) -> T:
    """The worker's result for ``request``; UploadError (499) after ``cancel(future)`` when the client
    hangs up first, so that its worker stops instead of computing an answer nobody reads."""
    answer = asyncio.ensure_future(asyncio.wrap_future(future))
    gone = asyncio.ensure_future(_client_gone(request))
    try:
        await asyncio.wait((answer, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not answer.done():
        cancel(future)
        answer.cancel()
        raise UploadError(CLIENT_GONE, "the client hung up before the answer")
    return answer.result()


async def _client_gone(request: Request) -> None:
    """Returns when the client hangs up (after its body was read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
