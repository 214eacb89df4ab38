"""POST /api/v1/detect: faces in one uploaded image, and on request the classifier's top-k for each
face crop and for the whole image. Every check that costs nothing comes before the queue
(image_upload.py: body size, form parts, format, pixel count and JPEG scans from the header:
decompression bombs never decode); decoding runs in a worker's decoder process under a CPU budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from streamproc.media.still_images import ImageError
from streamproc.server.decoder import DecodeStopped
from streamproc.server.detect_pool import MAX_TOP_K, DetectPool, DetectRequest, QueueFull
from streamproc.server.image_upload import IMAGE_ERROR_STATUS, receive_image, result_unless_gone
from streamproc.server.openapi import ERROR_BODY, IMAGE_REQUEST_BODY
from streamproc.server.routes import error, state_of
from streamproc.server.uploads import UploadError

RETRY_AFTER_S = "1"

# what every route that takes an uploaded image may answer (for the OpenAPI schema)
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "damaged image, form without 'file', bad parameter", "content": ERROR_BODY},
    401: {"description": "token missing or wrong"},
    408: {"description": "the body came too slowly"},
    413: {"description": "body, form or image too big"},
    415: {"description": "not a JPEG, PNG, WebP or BMP image"},
    422: {
        "description": "too costly to decode: too many JPEG scans or header segments, or over the CPU budget",
        "content": ERROR_BODY,
    },
    503: {"description": "queue full or server stopping: retry after Retry-After seconds"},
}

router = APIRouter()


@router.post(
    "/api/v1/detect",
    summary="detect (and classify) faces in an image",
    description="The image is the 'file' field of a multipart form or the raw body (image/jpeg, "
    "image/png, image/webp, image/bmp). Answers the image size, each face (box, keypoints, score), "
    "'warnings' (damage the decoder papered over, such as a truncated JPEG: empty when none) and, "
    "with classify, the top-k labels of each face crop and/or the whole image.",
    openapi_extra=IMAGE_REQUEST_BODY,
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
    """Receive and check the upload, queue it, wait for the worker's answer or the client leaving."""
    found = await answer_upload(
        request, pool, lambda data: DetectRequest(data, classify, model, top_k, min_score)
    )
    if isinstance(found, JSONResponse):
        return found
    found["timing_ms"]["total"] = round((time.monotonic() - started) * 1000.0, 2)
    return JSONResponse(found)


async def answer_upload(
    request: Request, pool: DetectPool, job: Callable[[bytes], DetectRequest]
) -> dict[str, Any] | JSONResponse:
    """Receive and check the upload, queue ``job(image bytes)``, wait for the worker's answer or the
    client leaving; the error answer when a step fails (every image route answers alike)."""
    try:
        upload = await receive_image(request, state_of(request).settings)
        future = pool.submit(job(upload.data))
        found: dict[str, Any] = await result_unless_gone(request, future, pool.cancel)
    except UploadError as exc:  # also 499: the client hung up, its worker stopped
        return error(exc.status, str(exc))
    except QueueFull:
        return error(503, "the detection queue is full: retry shortly", {"Retry-After": RETRY_AFTER_S})
    except ImageError as exc:
        return error(IMAGE_ERROR_STATUS[exc.kind], str(exc))
    except DecodeStopped:
        return error(503, "the server is stopping", {"Retry-After": RETRY_AFTER_S})
    return found


@router.get("/api/v1/models", summary="classifier models the detection API offers")
async def models(request: Request) -> dict[str, list[str]]:
    pool: DetectPool | None = request.app.state.detect
    return {"models": pool.models if pool is not None else []}
