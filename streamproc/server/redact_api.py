"""POST /api/v1/redact: an image in, the same image out with every face's head covered, in the same
format, upright and without metadata. The upload goes through the checks, queue and workers of
POST /api/v1/detect, so limits, authentication and errors are the same."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from streamproc.privacy.photo import RedactRequest
from streamproc.server.detect_api import UPLOAD_ERRORS, answer_upload
from streamproc.server.detect_pool import DetectPool, DetectRequest
from streamproc.server.openapi import IMAGE_REQUEST_BODY
from streamproc.server.routes import error

router = APIRouter()
MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "bmp": "image/bmp"}


@router.post(
    "/api/v1/redact",
    summary="the image with every face hidden",
    description="The image is the raw body (image/jpeg, image/png, image/webp, image/bmp) or the 'file'"
    " field of a multipart form. Answers the same image, same format, upright (EXIF orientation"
    " applied) and without metadata, each face's head blurred, pixelated or filled; X-Faces-Covered"
    " says how many.",
    response_class=Response,
    openapi_extra=IMAGE_REQUEST_BODY,
    responses={
        200: {"content": {media: {} for media in MEDIA_TYPES.values()}, "description": "the redacted image"},
        **UPLOAD_ERRORS,
    },
)
async def redact(
    request: Request,
    mode: Literal["blur", "pixelate", "fill"] = Query(
        "blur", description="how faces are hidden: blur | pixelate | fill"
    ),
    min_score: float | None = Query(None, gt=0.0, lt=1.0, description="least face score (redact.min_score)"),
    margin: float | None = Query(None, ge=0.0, le=3.0, description="head margin (redact.margin)"),
    quality: int = Query(95, ge=1, le=100, description="JPEG and WebP quality"),
) -> Response:
    started = time.monotonic()
    pool: DetectPool | None = request.app.state.detect
    if pool is None:
        return error(404, "the detection API is off (http.api.enabled)")
    score = pool.redact.min_score if min_score is None else min_score
    response: Response
    if score < pool.redact_min_score:
        response = error(400, f"min_score {score} is below the detector's threshold {pool.redact_min_score}")
    else:
        response = await _answer(
            request, pool, RedactRequest(mode, score, _or(margin, pool.redact.margin), quality)
        )
    request.app.state.api_metrics.record(response.status_code, time.monotonic() - started)
    return response


async def _answer(request: Request, pool: DetectPool, job: RedactRequest) -> Response:
    answer = await answer_upload(request, pool, lambda data: DetectRequest(data, redact=job))
    if isinstance(answer, Response):
        return answer
    headers = {"X-Faces-Covered": str(answer["faces"])}
    if answer["warnings"]:  # damage the decoder papered over (a truncated JPEG): said, as /detect says it
        headers["X-Warnings"] = "; ".join(answer["warnings"])
    return Response(answer["image"], media_type=MEDIA_TYPES[answer["format"]], headers=headers)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
