"""A TCP proxy on 127.0.0.1 that can cut every connection through it, like a network fault."""

from __future__ import annotations

import socket
import threading


class CuttingProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; :meth:`cut` drops every live connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._live: list[socket.socket] = []
        self._closed = False
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._live += [client, upstream]
                self.connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> int:
        """Drop every connection now (the client sees its connection die mid-statement)."""
        with self._lock:
            live, self._live = self._live, []
        for s in live:
            # shutdown() tears the TCP connection down at once, even while a pump thread
            # is blocked reading it (close() alone would wait for that read to return).
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        return len(live) // 2

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()
