"""HTTPS for the server: the key checked with a clear message, and the TLS handshake under the same
deadline as a request's headers (asyncio's default is 60 s, which uvicorn keeps)."""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
from typing import Any

import uvicorn

from streamproc.config.settings import HttpSettings
from streamproc.core.errors import ConfigError

# PKCS#8 and the traditional OpenSSL format: the markers of a key that needs a passphrase
ENCRYPTED_KEY_MARKERS = ("-----BEGIN ENCRYPTED PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED")


def tls_options(settings: HttpSettings) -> dict[str, Any]:
    """uvicorn.Config's TLS arguments; ConfigError for an encrypted key without its passphrase."""
    if settings.tls_cert is None or settings.tls_key is None:
        return {}
    password = settings.tls_key_password.get_secret_value() if settings.tls_key_password else None
    if password is None and _encrypted(settings):
        raise ConfigError(
            f"http.tls_key {settings.tls_key} is encrypted: give its passphrase in "
            "STREAMPROC_HTTP__TLS_KEY_PASSWORD (or http.tls_key_password), or decrypt it "
            "(openssl pkey -in KEY -out PLAIN_KEY)"
        )
    return {
        "ssl_certfile": settings.tls_cert,
        "ssl_keyfile": settings.tls_key,
        "ssl_keyfile_password": password,
    }


def load_error(settings: HttpSettings, exc: Exception) -> ConfigError:
    """One line for a certificate or key that does not load."""
    if settings.tls_key_password is not None and _encrypted(settings):  # OpenSSL says only "PEM lib"
        return ConfigError(
            f"http.tls_key {settings.tls_key} cannot be decrypted with http.tls_key_password: "
            "wrong passphrase?"
        )
    return ConfigError(f"http.tls_cert/tls_key cannot be used: {exc}")


def _encrypted(settings: HttpSettings) -> bool:
    assert settings.tls_key is not None
    try:
        text = settings.tls_key.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False  # loading says why
    return any(marker in text for marker in ENCRYPTED_KEY_MARKERS)


class DeadlineServer(uvicorn.Server):
    """uvicorn's server, with a TLS handshake (and TLS close) deadline of ``handshake_timeout``
    seconds: a client that connects and never starts its handshake is dropped like one that never
    sends its headers. uvicorn passes no such timeout to ``create_server``, so the loop (this
    server's own, in its own thread) gets a ``create_server`` that adds it."""

    def __init__(self, config: uvicorn.Config, handshake_timeout: float) -> None:
        super().__init__(config)
        self.handshake_timeout = handshake_timeout

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if isinstance(self.config.ssl, ssl.SSLContext):
            loop = asyncio.get_running_loop()
            loop.create_server = functools.partial(  # type: ignore[method-assign]
                loop.create_server,
                ssl_handshake_timeout=self.handshake_timeout,
                ssl_shutdown_timeout=self.handshake_timeout,
            )
        await super().startup(sockets)
