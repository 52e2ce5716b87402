"""A :class:`~.listener.Listener` served from a background thread: the lifecycle the detector's OTLP/HTTP
receiver and its ``/metrics`` endpoint share.

Usage::

    class Hello(Served):
        thread_name = "hello"

        def _listener(self) -> Listener:
            return Listener(self._requested, HelloExchange, ConnectionLimits())

    server = Hello(("127.0.0.1", 0)).start()     # bound: server.address holds the port
    server.stop(timeout=10.0)                    # stop accepting, finish the exchanges in flight
"""

from __future__ import annotations

import threading
from typing import TypeVar

from .listener import Listener

__all__ = ["Served"]

_S = TypeVar("_S", bound="Served")

class Served:
    """A :class:`Listener` served from a background thread, bound on :meth:`start`: the lifecycle the
    receiver and ``/metrics`` share. Subclasses say which listener (:meth:`_listener`) and name the thread."""

    thread_name = "servewatch-listener"

    def __init__(self, address: tuple[str, int]) -> None:
        self._requested = address
        self._server: Listener | None = None
        self._thread: threading.Thread | None = None

    def _listener(self) -> Listener:
        raise NotImplementedError

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the requested one before :meth:`start`."""
        if self._server is None:
            return self._requested
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def serving(self) -> bool:
        return self._server is not None and not self._server.stopping

    def start(self: _S) -> _S:
        """Bind and serve in a background thread (OSError when the address is taken)."""
        self._server = self._listener()
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting; let the exchanges in flight finish (up to ``timeout``); close the rest (idempotent)."""
        server = self._server
        if server is None:
            return
        server.stop_serving(timeout)
        self._server = None
