"""POST /api/v1/detect: faces in one uploaded image, and on request the classifier's top-k for each
face crop and for the whole image. Every check that costs nothing comes before the queue: body
size, content type, image format, pixel count (from the header: decompression bombs never decode)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from streamproc.media.still_images import ImageError, read_header
from streamproc.server.detect_pool import MAX_TOP_K, DetectPool, DetectRequest, QueueFull
from streamproc.server.routes import error, state_of
from streamproc.server.uploads import UploadError, image_bytes, read_body

RETRY_AFTER_S = "1"
IMAGE_ERROR_STATUS = {"format": 415, "damaged": 400, "too_big": 413}

# what every route that takes an uploaded image may answer (for the OpenAPI schema)
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "damaged or truncated image, bad parameter"},
    401: {"description": "token missing or wrong"},
    408: {"description": "the body came too slowly"},
    413: {"description": "body or image too big"},
    415: {"description": "not a JPEG, PNG, WebP or BMP image"},
    503: {"description": "queue full: retry after Retry-After seconds"},
}

router = APIRouter()


@router.post(
    "/api/v1/detect",
    summary="detect (and classify) faces in an image",
    description="The image is the raw body (image/jpeg, image/png, image/webp, image/bmp) or the "
    "'file' field of a multipart form. Answers the image size, each face (box, keypoints, score) and, "
    "with classify, the top-k labels of each face crop and/or the whole image.",
    responses=UPLOAD_ERRORS,
)
async def detect(
    request: Request,
    classify: Literal["faces", "image", "both"] | None = Query(None, description="what to classify"),
    top_k: int = Query(5, ge=1, le=MAX_TOP_K, description="labels per classification"),
    model: str | None = Query(None, description="classifier model (see GET /api/v1/models)"),
    min_score: float | None = Query(None, ge=0.0, le=1.0, description="least face score"),
) -> JSONResponse:
    started = time.monotonic()
    pool: DetectPool | None = request.app.state.detect
    if pool is None:
        return error(404, "the detection API is off (http.api.enabled)")
    if min_score is not None and min_score < pool.min_score:
        response = error(400, f"min_score {min_score} is below the detector's threshold {pool.min_score}")
    elif classify is not None and not pool.models:
        response = error(400, "no classifier model is configured for the API (http.api.models)")
    elif model is not None and not pool.accepts(model):
        response = error(400, f"unknown model {model!r}: choose one of {', '.join(pool.models) or 'none'}")
    else:
        request_min = pool.min_score if min_score is None else min_score
        response = await _answer(request, pool, classify, model, top_k, request_min, started)
    request.app.state.api_metrics.record(response.status_code, time.monotonic() - started)
    return response


async def _answer(
    request: Request,
    pool: DetectPool,
    classify: str | None,
    model: str | None,
    top_k: int,
    min_score: float,
    started: float,
) -> JSONResponse:
    """Read and check the upload, queue it, wait for the worker's answer."""
    upload = await checked_upload(request)
    if isinstance(upload, JSONResponse):
        return upload
    answer = await run_job(pool, DetectRequest(upload, classify, model, top_k, min_score))
    if isinstance(answer, JSONResponse):
        return answer
    answer["timing_ms"]["total"] = round((time.monotonic() - started) * 1000.0, 2)
    return JSONResponse(answer)


async def checked_upload(request: Request) -> bytes | JSONResponse:
    """The uploaded image, or the error answer: the body's size, content type, image format and
    pixel count (from the header) are checked before anything is queued."""
    settings = state_of(request).settings
    api = settings.api
    try:
        body = await read_body(
            request.stream(),
            request.headers.get("content-length"),
            int(api.max_body_mb * 1024 * 1024),
            settings.request_timeout,
        )
        data = image_bytes(request.headers.get("content-type", ""), body)
        header = read_header(data)
    except UploadError as exc:
        return error(exc.status, str(exc))
    except ImageError as exc:
        return error(IMAGE_ERROR_STATUS[exc.kind], str(exc))
    if header.pixels > api.max_megapixels * 1e6:
        return error(
            413,
            f"the image is {header.width}x{header.height}, more than {api.max_megapixels:g} megapixels",
        )
    return data


async def run_job(pool: DetectPool, job: DetectRequest) -> dict[str, Any] | JSONResponse:
    """The worker's answer to a request, or the error answer (queue full, image not decodable)."""
    try:
        future = pool.submit(job)
    except QueueFull:
        return error(503, "the detection queue is full: retry shortly", {"Retry-After": RETRY_AFTER_S})
    try:
        answer: dict[str, Any] = await asyncio.wrap_future(future)
    except ImageError as exc:
        return error(IMAGE_ERROR_STATUS[exc.kind], str(exc))
    return answer


@router.get("/api/v1/models", summary="classifier models the detection API offers")
async def models(request: Request) -> dict[str, list[str]]:
    pool: DetectPool | None = request.app.state.detect
    return {"models": pool.models if pool is not None else []}
