"""uvicorn's HTTP/1.1 protocol with a request-header deadline.

uvicorn closes idle keep-alive connections, but a client that connects and sends its headers a byte
at a time (or nothing at all) holds its connection for ever. Here every connection must deliver each
request's headers within ``request_timeout`` seconds of connecting or of the previous answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class DeadlineH11Protocol(H11Protocol):
    request_timeout = 10.0  # set per server by subclassing (see deadline_protocol)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        waiting_for = self.cycle  # a new request replaces the cycle
        self._deadline = self.loop.call_later(self.request_timeout, self._expire, waiting_for)

    def _expire(self, waiting_for: Any) -> None:
        idle = self.cycle is None or self.cycle.response_complete  # not while answering
        if self.cycle is waiting_for and idle and not self.transport.is_closing():
            log.debug(
                "http: %s sent no complete request within %g s: closed", self.client, self.request_timeout
            )
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same time

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)


def deadline_protocol(request_timeout: float) -> type[DeadlineH11Protocol]:
    """The protocol class for one server's ``request_timeout``."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"request_timeout": request_timeout})
