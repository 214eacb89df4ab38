"""The HTTP server: FastAPI on uvicorn, in a background thread with its own event loop.

Endpoints: ``/`` (live page), ``/healthz``, ``/readyz``, ``/metrics``, ``/api/stats``,
``/api/sources``, ``/live/{source}.jpg`` and ``.mjpeg``, ``POST /api/v1/detect``, ``/docs``, ``/redoc``.
The server reads the pipeline only through :class:`PipelineView`; nothing here runs in the
inference loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp

from streamproc import __version__
from streamproc.config.settings import HttpSettings
from streamproc.core.errors import OutputError
from streamproc.server.access import (
    AccessControl,
    Refusals,
    allowed_hosts,
    is_loopback,
    load_token,
)
from streamproc.server.addresses import addresses_to_open, is_unspecified
from streamproc.server.api_metrics import ApiMetrics
from streamproc.server.detect_api import router as detect_router
from streamproc.server.detect_pool import DetectPool
from streamproc.server.docs import router as docs_router
from streamproc.server.live import LiveHub
from streamproc.server.metrics import metrics_registry
from streamproc.server.openapi import customise_schema
from streamproc.server.protocol import deadline_protocol
from streamproc.server.redact_api import router as redact_router
from streamproc.server.routes import ServerState, error
from streamproc.server.routes import router as status_router
from streamproc.server.tls import DeadlineServer, load_error, tls_options
from streamproc.server.view import PipelineView
from streamproc.sinks.live import LiveViewSink

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 2  # open streams end within POLL_S; stragglers are cancelled after this
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
REFUSAL_SUMMARY_S = 60.0  # refused Hosts and tokens: at most one summary line per kind this often
MAX_ADDRESSES_SHOWN = 4  # the start-up line stays one line on a host with many bridges


def allowed_methods(request: Request) -> str:
    """The Allow header of a 405: each method some route would take on the request's path. Asked of
    the routes by matching, as routers nest (HEAD is a route of its own, kept out of the docs)."""
    allowed = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def build_app(
    state: ServerState, detect: DetectPool | None, token: str | None, refusals: Refusals
) -> ASGIApp:
    """The ASGI application: routes, the validation-error format, CORS if configured, access control."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        hub = asyncio.create_task(state.hub.run(state.closing)) if state.hub is not None else None
        yield
        if hub is not None:
            hub.cancel()

    # FastAPI's /docs and /redoc load scripts from a CDN; docs_router serves them offline
    app = FastAPI(title="streamproc", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = state
    app.state.detect = detect
    app.state.api_metrics = ApiMetrics(state.registry, detect) if detect is not None else None
    app.include_router(status_router)
    app.include_router(detect_router)
    app.include_router(redact_router)
    app.include_router(docs_router)
    customise_schema(app, bearer=token is not None)  # without a token there is nothing to authorize

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """404, 405...: the same {"error": ...} shape as every other answer."""
        message = f"no such page: {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return error(exc.status_code, message, headers)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error(400, f"{where}: {first.get('msg', 'invalid')}")

    settings = state.settings
    guarded = AccessControl(app, token, allowed_hosts(settings), refusals)
    if not settings.cors_origins:
        return guarded
    # outside the token check: a browser's preflight (OPTIONS) carries no credentials
    return CORSMiddleware(
        guarded,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and without it the
    # answer's body waits for the client's delayed ACK of its headers (40 ms a request)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise OutputError(
            f"cannot listen on {host}:{port} for the HTTP server: {exc.strerror or exc}: "
            "choose another http.port (or --http) or stop what uses it"
        ) from None
    sock.set_inheritable(True)
    return sock


class StatusServer:
    """Serves a pipeline's health, metrics, stats and live view, and the detection API. Checks
    access settings and binds on construction (a busy port or a missing token fail at start-up);
    ``start`` serves in a thread, ``stop`` ends it."""

    def __init__(
        self,
        settings: HttpSettings,
        view: PipelineView,
        live: LiveViewSink | None = None,
        detect: DetectPool | None = None,
        require_sources: bool = True,
        refusal_summary_s: float = REFUSAL_SUMMARY_S,
    ) -> None:
        self.settings = settings
        self.view = view
        self.live = live
        self.detect = detect
        token = load_token(settings)
        self.closing = threading.Event()
        state = ServerState(
            settings=settings,
            view=view,
            live=live,
            hub=LiveHub(live, settings.live_fps) if live is not None else None,
            registry=metrics_registry(view, live, require_sources),
            require_sources=require_sources,
            closing=self.closing,
        )
        self._refusals = Refusals(state.registry, refusal_summary_s)
        config = uvicorn.Config(
            build_app(state, detect, token, self._refusals),
            http=deadline_protocol(settings.request_timeout),
            ws="none",
            lifespan="on",
            log_config=None,  # streamproc's logging (text or JSON) handles uvicorn's records
            log_level="warning",
            access_log=False,
            server_header=False,  # AccessControl says "streamproc", without versions
            proxy_headers=False,
            limit_concurrency=settings.max_connections,
            timeout_keep_alive=settings.idle_timeout,  # type: ignore[arg-type]
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            **tls_options(settings),
        )
        try:
            config.load()
        except (ssl.SSLError, OSError) as exc:
            raise load_error(settings, exc) from None
        self._socket = _listen(settings.host, settings.port)
        self._server = DeadlineServer(config, settings.request_timeout)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return self.url_at(self.settings.host)

    def url_at(self, host: str) -> str:
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if self.settings.tls_cert is not None else "http"
        return f"{scheme}://{host}:{self.port}/"

    def where_to_open(self) -> str:
        """For a server on every interface, the urls a browser can open (one line's worth); else ""."""
        if not is_unspecified(self.settings.host):
            return ""
        found = addresses_to_open(self.settings.host)
        here = self.url_at("127.0.0.1" if self.settings.host == "0.0.0.0" else "::1")
        if not found:
            return f"open {here} here; no network address found; "
        shown = ", ".join(map(self.url_at, found[:MAX_ADDRESSES_SHOWN]))
        more = f" and {len(found) - MAX_ADDRESSES_SHOWN} more" if len(found) > MAX_ADDRESSES_SHOWN else ""
        return f"open {here} here, {shown}{more} from the network; "

    def start(self) -> None:
        self._thread.start()
        what = "live view; /metrics, /healthz, /readyz, /api/stats"
        if self.detect is not None:
            what += ", POST /api/v1/detect"
        log.info("HTTP server on %s (%s%s; docs at /docs)", self.url, self.where_to_open(), what)
        if not is_loopback(self.settings.host) and self.settings.tls_cert is None:
            log.warning(
                "http: serving the network without TLS: the token and the pictures cross it in clear "
                "text; set http.tls_cert and http.tls_key, or put a TLS proxy in front"
            )

    def stop(self) -> None:
        """Stop serving: open live streams end within a poll interval, then the thread joins."""
        self.closing.set()
        if self.detect is not None:  # requests waiting for a decode answer at once, not after the grace
            self.detect.stop()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join()
        self._socket.close()
        self._refusals.flush()  # the count since the last summary

    def __enter__(self) -> StatusServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
