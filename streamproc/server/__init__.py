"""Optional HTTP server: Prometheus metrics, health probes, JSON stats and the live view."""

from streamproc.server.app import StatusServer

__all__ = ["StatusServer"]
