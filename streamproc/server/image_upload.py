"""An uploaded image, received and checked before any decoding: the checks every image endpoint of
the API shares (``POST /api/v1/detect``, and any other that takes an image). Each limit is from
``http.api``: body size and time, form parts and part headers, format, pixel count and JPEG scans
read from the header. What costs more than reading the bytes (parsing a form, walking the header)
runs in a thread, off the event loop; decoding comes later, in a worker's decoder process under
``http.api.cpu_budget_s``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.requests import Request

from streamproc.config.settings import DetectApiSettings, HttpSettings
from streamproc.media.still_images import ImageError, ImageHeader, read_header
from streamproc.server.uploads import UploadError, image_bytes, read_body

MB = 1024 * 1024
IMAGE_ERROR_STATUS = {"format": 415, "damaged": 400, "too_big": 413, "costly": 422}


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


async def client_gone(request: Request) -> None:
    """Returns when the client hangs up (after its body was read): a waiting request can stop."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
