"""A network path between a camera and streamproc for the tests: relays RTSP connections to a real
server and, like a firewall or NAT in between, can make UDP media never arrive.

RTSP control stays on its TCP connection, so SETUP and PLAY succeed; with ``block_udp`` the proxy
rewrites the ``client_port`` of every UDP SETUP to a pair of its own sockets that nobody reads, so the
server's RTP goes somewhere else, as when a firewall drops it. TCP-interleaved media rides the relayed
connection and keeps working. ``refuse_tcp`` answers TCP-interleaved SETUPs with 461 itself (a
UDP-only camera); ``mute_tcp`` drops the media interleaved on the connection (a camera that accepts
RTP over TCP and sends none); ``drop`` cuts every relayed connection (a network blip). Requests name the
server's own address, so that the server shares one live media between direct and relayed readers
(GStreamer keys shared media by url).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from rtsp_server import HOST, free_udp_range

_HEADER_END = b"\r\n\r\n"
_CLIENT_PORT = re.compile(rb"client_port=\d+(-\d+)?")
_CSEQ = re.compile(rb"^CSeq:\s*(\d+)", re.IGNORECASE | re.MULTILINE)


@dataclass
class RtspProxy:
    """Listens on ``port`` and relays each connection to ``target_port`` on the loopback."""

    target_port: int
    block_udp: bool = False
    refuse_tcp: bool = False
    mute_tcp: bool = False
    port: int = 0
    udp_setups: int = 0  # SETUPs asking for UDP, and of those, how many were sent to the dead ports
    diverted: int = 0
    _listener: socket.socket = field(init=False)
    _sinks: list[socket.socket] = field(default_factory=list)
    _connections: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> RtspProxy:
        base = free_udp_range(2)
        for port in (base, base + 1):  # bound, never read: packets sent there vanish without an ICMP error
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sink.bind((HOST, port))
            self._sinks.append(sink)
        self._dead = f"client_port={base}-{base + 1}".encode()
        self._listener = socket.create_server((HOST, self.port))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name="rtsp-proxy").start()
        return self

    def url(self, mount: str) -> str:
        return f"rtsp://{HOST}:{self.port}/{mount}"

    def drop(self) -> None:
        """Cut every relayed connection at once."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def close(self) -> None:
        self._listener.close()
        self.drop()
        for sink in self._sinks:
            sink.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                server = socket.create_connection((HOST, self.target_port))
            except OSError:  # the server is down (restarting): this client is refused, the next one tried
                client.close()
                continue
            with self._lock:
                self._connections += [client, server]
            sending = threading.Lock()  # the client's socket: relayed replies and our own 461s
            threading.Thread(target=self._requests, args=(client, server, sending), daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client, sending), daemon=True).start()

    def _replies(self, server: socket.socket, client: socket.socket, sending: threading.Lock) -> None:
        """Replies, and the server's interleaved media."""
        with contextlib.suppress(OSError):
            for message in _messages(server):
                if not (self.mute_tcp and message[:1] == b"$"):
                    with sending:
                        client.sendall(message)
        self._close_both(server, client)

    def _requests(self, client: socket.socket, server: socket.socket, sending: threading.Lock) -> None:
        """Requests, and the client's interleaved RTCP."""
        with contextlib.suppress(OSError):
            for message in _messages(client):
                refusal = self._refusal(message)
                if refusal:
                    with sending:
                        client.sendall(refusal)
                else:
                    server.sendall(self._rewrite(message))
        self._close_both(server, client)

    def _refusal(self, message: bytes) -> bytes | None:
        head = message.split(_HEADER_END, 1)[0]
        if not (self.refuse_tcp and head.startswith(b"SETUP ") and b"RTP/AVP/TCP" in head):
            return None
        cseq = _CSEQ.search(head)
        number = cseq.group(1) if cseq else b"0"
        return b"RTSP/1.0 461 Unsupported Transport\r\nCSeq: " + number + _HEADER_END

    def _rewrite(self, message: bytes) -> bytes:
        if message[:1] == b"$":
            return message
        head, _, body = message.partition(_HEADER_END)
        head = head.replace(f"{HOST}:{self.port}".encode(), f"{HOST}:{self.target_port}".encode())
        if not head.startswith(b"SETUP ") or not _CLIENT_PORT.search(head):
            return head + _HEADER_END + body
        self.udp_setups += 1
        if not self.block_udp:
            return message
        self.diverted += 1
        return _CLIENT_PORT.sub(self._dead, head) + _HEADER_END + body

    def _close_both(self, *sockets: socket.socket) -> None:
        for each in sockets:
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()


def _messages(connection: socket.socket) -> Iterator[bytes]:
    """Whole messages as they arrive, until the connection closes."""
    pending = b""
    while data := connection.recv(65536):
        pending += data
        while (message := _next_message(pending)) is not None:
            pending = pending[len(message) :]
            yield message


def _next_message(data: bytes) -> bytes | None:
    """The first whole message in ``data``: an interleaved frame (``$``, channel, length) or an RTSP
    request with its body; None until it has all arrived."""
    if data[:1] == b"$":
        if len(data) < 4:
            return None
        end = 4 + int.from_bytes(data[2:4], "big")
        return data[:end] if len(data) >= end else None
    head_end = data.find(_HEADER_END)
    if head_end < 0:
        return None
    length = re.search(rb"^Content-Length:\s*(\d+)", data[:head_end], re.IGNORECASE | re.MULTILINE)
    end = head_end + len(_HEADER_END) + (int(length.group(1)) if length else 0)
    return data[:end] if len(data) >= end else None
