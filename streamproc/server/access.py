"""Who may talk to the server: the Host allow-list (DNS rebinding), the bearer token, and headers every
answer carries. A plain ASGI middleware, so streamed answers (MJPEG) pass through untouched."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json

from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamproc.config.settings import HttpSettings
from streamproc.core.errors import ConfigError
from streamproc.server.refusals import RefusalLog

OPEN_PATHS = frozenset({"/healthz"})  # health checkers carry no token
MIN_TOKEN_LENGTH = 16
# on every answer: no versions in Server; browsers must not guess a content type (a JPEG is a JPEG)
COMMON_HEADERS = [(b"server", b"streamproc"), (b"x-content-type-options", b"nosniff")]
BASIC_CHALLENGE = (b"www-authenticate", b'Basic realm="streamproc", charset="UTF-8"')  # browsers


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def is_address(host: str) -> bool:
    """An IP address rather than a name: a browser sends one only to the address the user typed,
    so such a Host cannot come from DNS rebinding (which needs the attacker's name in it)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def load_token(settings: HttpSettings) -> str | None:
    """The configured token (setting, STREAMPROC_HTTP__TOKEN or token_file); refuses to serve beyond
    loopback without one."""
    token = settings.token.get_secret_value() if settings.token is not None else None
    if settings.token_file is not None:
        try:
            token = settings.token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"http.token_file {settings.token_file} cannot be read: {exc}") from None
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"the HTTP token is shorter than {MIN_TOKEN_LENGTH} characters: use a long random one"
        )
    if token is None and not is_loopback(settings.host):
        raise ConfigError(
            f"http.host {settings.host} accepts connections from the network, but no token is set: "
            "set STREAMPROC_HTTP__TOKEN (or http.token_file), or listen on 127.0.0.1"
        )
    return token


def allowed_hosts(settings: HttpSettings) -> frozenset[str] | None:
    """Host names to accept besides IP addresses (always accepted, see is_address; None: any): the
    setting, else localhost and the listening address when it is a name."""
    if settings.allowed_hosts is not None:
        names = {name.lower().strip("[]") for name in settings.allowed_hosts}
        return None if "*" in names else frozenset(names)
    return frozenset({"localhost", settings.host.lower()})


def host_name(header: str) -> str:
    """'example.org:8080' -> 'example.org', '[::1]:8080' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Refusals:
    """What AccessControl refused: every refusal in a metric, wrong Hosts and wrong tokens in the log
    at a bounded rate. A request without any token is not logged: a browser's first visit is one."""

    REASONS = ("host", "no_token", "wrong_token")

    def __init__(self, registry: CollectorRegistry, summary_s: float) -> None:
        self.metric = Counter(
            "streamproc_http_refused",
            "requests refused before reaching a route, by reason",
            ["reason"],
            registry=registry,
        )
        for reason in self.REASONS:
            self.metric.labels(reason)  # 0 from the start, so an alert rule sees the series
        self.hosts = RefusalLog("a Host not in http.allowed_hosts", summary_s)
        self.tokens = RefusalLog("a wrong token", summary_s)

    def flush(self) -> None:
        self.hosts.flush()
        self.tokens.flush()


class AccessControl:
    """Checks Host and token before the app sees a request; adds ``Server: streamproc``."""

    def __init__(
        self, app: ASGIApp, token: str | None, hosts: frozenset[str] | None, refusals: Refusals
    ) -> None:
        self.app = app
        self.token = token.encode() if token is not None else None
        self.hosts = hosts
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        # no Host at all (HTTP/1.0 tools) cannot be a browser tricked by DNS rebinding, nor an address
        if self.hosts is not None and host and host not in self.hosts and not is_address(host):
            self.refusals.metric.labels("host").inc()
            self.refusals.hosts.refused(host[:100], f"from {_client(scope)}")
            await _refuse(
                send,
                400,
                "this server does not answer for that Host name: use its IP address, or add the name "
                "to http.allowed_hosts",
            )
            return
        open_path = self.token is None or scope["path"] in OPEN_PATHS
        credentials = headers.get(b"authorization")
        if not open_path and not self._authorised(credentials or b""):
            self._count_token_refusal(scope, credentials is not None)
            await _refuse(
                send,
                401,
                "a token is required: Authorization: Bearer TOKEN",
                [(b"www-authenticate", b'Bearer realm="streamproc"'), BASIC_CHALLENGE],
            )
            return

        async def send_with_server(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *COMMON_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_server)

    def _count_token_refusal(self, scope: Scope, wrong: bool) -> None:
        self.refusals.metric.labels("wrong_token" if wrong else "no_token").inc()
        if wrong:  # keyed by address, not address:port: one client guessing counts as one key
            client = scope.get("client")
            self.refusals.tokens.refused(client[0] if client else "?", f"on {scope['path'][:100]}")

    def _authorised(self, header: bytes) -> bool:
        """Bearer TOKEN, or Basic with the token as password (browsers ask for that themselves)."""
        assert self.token is not None
        scheme, _, value = header.partition(b" ")
        if scheme.lower() == b"bearer":
            return hmac.compare_digest(value.strip(), self.token)
        if scheme.lower() == b"basic":
            try:
                password = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(password, self.token)
        return False


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "?"


async def _refuse(
    send: Send, status: int, error: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": error}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *COMMON_HEADERS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
