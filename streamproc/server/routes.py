"""The status routes: live page, probes, metrics, JSON stats and sources, live JPEG and MJPEG.
Each answers GET and HEAD; none runs in the inference loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streamproc.config.settings import HttpSettings
from streamproc.server.health import readiness
from streamproc.server.live import BOUNDARY, LiveHub, frame_headers
from streamproc.server.page import live_page
from streamproc.server.view import PipelineView
from streamproc.sinks.live import LiveViewSink


@dataclass
class ServerState:
    """What the routes read, kept on ``app.state.server``."""

    settings: HttpSettings
    view: PipelineView
    live: LiveViewSink | None
    hub: LiveHub | None
    registry: CollectorRegistry
    require_sources: bool
    closing: threading.Event


def state_of(request: Request) -> ServerState:
    return request.app.state.server


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=headers)


router = APIRouter()
Endpoint = Callable[..., Awaitable[Any]]


def get_and_head(on: APIRouter, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """Route GET and HEAD (health checkers use HEAD) to one endpoint; only GET is in the docs."""

    def register(endpoint: Endpoint) -> Endpoint:
        on.add_api_route(path, endpoint, methods=["GET"], **options)
        on.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False, **options)
        return endpoint

    return register


@get_and_head(router, "/", response_class=HTMLResponse, summary="live page")
async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(live_page(list(state_of(request).view.sources_snapshot())))


@get_and_head(router, "/healthz", summary="liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get_and_head(router, "/readyz", summary="readiness: sources streaming or finished OK")
async def readyz(request: Request) -> JSONResponse:
    state = state_of(request)
    ready, reasons = readiness(state.view, state.require_sources)
    return JSONResponse({"ready": ready, "reasons": reasons}, 200 if ready else 503)


@get_and_head(router, "/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    body = await asyncio.to_thread(generate_latest, state_of(request).registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@get_and_head(router, "/api/stats", summary="pipeline statistics")
async def stats(request: Request) -> dict[str, Any]:
    view = state_of(request).view
    return {**view.stats_snapshot(), "sinks": view.sinks_snapshot()}


@get_and_head(router, "/api/sources", summary="sources, their state and numbers")
async def sources(request: Request) -> dict[str, Any]:
    state = state_of(request)
    stats = state.view.stats_snapshot()["sources"]
    viewers = state.live.viewers() if state.live is not None else {}
    found = []
    for source_id, source in state.view.sources_snapshot().items():
        numbers = stats.get(source_id, {})
        found.append(
            {
                "id": source_id,
                "url": source["url"],
                "state": source["state"],
                **{
                    key: numbers.get(key, 0)
                    for key in (
                        "fps",
                        "faces",
                        "frames_processed",
                        "frames_decoded",
                        "frames_dropped",
                        "reconnects",
                    )
                },
                "last_error": source["error"] or numbers.get("last_error"),
                "viewers": viewers.get(source_id, 0),
            }
        )
    return {"sources": found}


@get_and_head(router, "/live/{name}", summary="live view: NAME.jpg (still) or NAME.mjpeg")
async def live_view(request: Request, name: str) -> Response:
    state = state_of(request)
    source_id, _, kind = name.rpartition(".")
    if kind not in ("jpg", "mjpeg") or state.live is None or state.hub is None:
        return error(404, f"no such page: /live/{name}")
    if source_id not in state.view.sources_snapshot():
        return error(404, f"no source named {source_id!r}")
    if kind == "mjpeg":
        media_type = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        if request.method == "HEAD":
            return Response(media_type=media_type, headers={"Cache-Control": "no-store"})
        stream = state.hub.mjpeg(source_id, state.closing)
        return StreamingResponse(stream, media_type=media_type, headers={"Cache-Control": "no-store"})
    result = state.live.latest(source_id)
    if result is None:
        return error(503, f"no frame of {source_id} processed yet", {"Retry-After": "1"})
    frame = await asyncio.to_thread(state.live.jpeg, result)
    return Response(frame.jpeg, media_type="image/jpeg", headers=frame_headers(frame))
