"""The API documentation, served offline: Swagger UI at ``/docs`` and ReDoc at ``/redoc``.

FastAPI's own pages load their scripts from a CDN, so on the isolated networks cameras sit on they
stay blank. Here the scripts come from the ``fastapi-offline`` package (Swagger UI 5, which reads the
OpenAPI 3.1 FastAPI writes, and ReDoc 2), served by streamproc itself under ``/docs/assets/``. Access
control applies as on every other route: with a token configured, the pages, their assets and
``/openapi.json`` need it too (a browser asks once and re-sends it for the page's requests).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from streamproc.server.routes import Endpoint, error, get_and_head

ASSET_PACKAGE = "fastapi_offline"
ASSET_PATH = "/docs/assets/"
# URL name -> media type. A fixed list: no name from a request reaches the filesystem.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}

# The pages may load from this server only: ReDoc 2 shows a logo from its vendor's CDN in every
# build, and a browser that obeys this asks nothing of the network. Inline: Swagger UI's start-up
# script and ReDoc's styles; blob: ReDoc's search worker.
PAGE_POLICY = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:",
}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@functools.cache
def load_asset(name: str) -> Asset:
    """One of ASSETS, read once from the installed package."""
    body = resources.files(ASSET_PACKAGE).joinpath("static", name).read_bytes()
    return Asset(body, ASSETS[name], f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def swagger_ui(schema: str, title: str, assets: str) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=schema,
        title=title,
        swagger_js_url=assets + "swagger-ui-bundle.js",
        swagger_css_url=assets + "swagger-ui.css",
        swagger_favicon_url=assets + "favicon.png",
        # no validator badge: it would send the schema's address to validator.swagger.io
        swagger_ui_parameters={"validatorUrl": None},
    )


def redoc(schema: str, title: str, assets: str) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=schema,
        title=title,
        redoc_js_url=assets + "redoc.standalone.js",
        redoc_favicon_url=assets + "favicon.png",
        with_google_fonts=False,
    )


def docs_page(build: Callable[[str, str, str], HTMLResponse]) -> Endpoint:
    """The endpoint of one documentation page: its schema and assets under the app's root path."""

    async def page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        answer = build(root + request.app.openapi_url, f"{request.app.title} API", root + ASSET_PATH)
        answer.headers.update(PAGE_POLICY)
        return answer

    return page


get_and_head(router, "/docs")(docs_page(swagger_ui))
get_and_head(router, "/redoc")(docs_page(redoc))


@get_and_head(router, ASSET_PATH + "{name}")
async def asset(request: Request, name: str) -> Response:
    """A script, style or icon of the pages above; revalidated by ETag, so an upgrade shows at once."""
    if name not in ASSETS:
        return error(404, f"no such page: {request.url.path}")
    found = await asyncio.to_thread(load_asset, name)  # the first read touches the disk
    headers = {"ETag": found.etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


@get_and_head(router, "/favicon.ico")
async def favicon(request: Request) -> Response:
    """Browsers ask for it on every page (the live page too); the docs' icon spares them a 404."""
    return await asset(request, "favicon.png")
