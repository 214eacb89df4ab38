"""Optional HTTP server: Prometheus metrics, health probes, JSON stats and the live view.

``StatusServer`` loads on first use: the image decoder's child process imports
``streamproc.server.decode_child`` and needs none of the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamproc.server.app import StatusServer

__all__ = ["StatusServer"]


def __getattr__(name: str) -> Any:
    if name == "StatusServer":
        from streamproc.server.app import StatusServer

        return StatusServer
    raise AttributeError(f"module 'streamproc.server' has no attribute {name!r}")
