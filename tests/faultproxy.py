"""A TCP forwarder that tests put in front of a real server (PostgreSQL, Redis) to break it.

The shared servers are never stopped or paused: the product is pointed at the proxy, and the
proxy fails the way a network or a server does.

- ``pass``: bytes flow both ways.
- ``cut``: every open connection is closed and new ones are refused (the port stops
  listening), as when the server is down.
- ``pause``: connections stay open and new ones are accepted, but no byte moves either way
  until the proxy passes again, as when the server hangs or a network drops packets.
- ``sever()``: close the open connections once and keep serving (a server restart, a
  backend killed by an administrator, a load balancer dropping idle connections).
"""

import selectors
import socket
import threading
from contextlib import suppress

CHUNK = 65536
TICK_SECONDS = 0.1


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, name: str = "proxy"):
        self.target = (target_host, target_port)
        self.name = name
        self.mode = "pass"
        self.port = 0
        self.changed = threading.Condition()
        self.connections: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.closed = False

    # -- the controls ----------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        self._listen()
        return self

    def cut(self) -> None:
        with self.changed:
            self.mode = "cut"
            self._close_listener()
            self._close_connections()
            self.changed.notify_all()

    def pause(self) -> None:
        with self.changed:
            self.mode = "pause"
            self.changed.notify_all()

    def restore(self) -> None:
        """Back to ``pass``: listen again after a cut, release held bytes after a pause."""
        with self.changed:
            if self.mode == "cut":
                self._listen()
            self.mode = "pass"
            self.changed.notify_all()

    def sever(self) -> int:
        """Close every open connection now; returns how many there were."""
        with self.changed:
            count = len(self.connections) // 2
            self._close_connections()
            return count

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self._close_listener()
            self._close_connections()
            self.changed.notify_all()

    @property
    def address(self) -> str:
        """``host:port`` to put in a URL in place of the real server's."""
        return f"127.0.0.1:{self.port}"

    # -- the machinery ---------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))  # the same port again after a cut
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(
            target=self._accept, args=(listener,), name=f"{self.name}-accept", daemon=True
        ).start()

    def _close_listener(self) -> None:
        if self.listener is not None:
            with suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                self.listener.close()
            self.listener = None

    def _close_connections(self) -> None:
        for connection in list(self.connections):
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                connection.close()
        self.connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: a cut, or the end
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.changed:
                if self.mode == "cut" or self.closed:
                    client.close()
                    server.close()
                    continue
                self.connections |= {client, server}
            threading.Thread(
                target=self._pump, args=(client, server), name=f"{self.name}-pump", daemon=True
            ).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        """Move bytes both ways on one thread; while paused, read nothing (the kernel holds
        what arrives, and the sender blocks once its buffers are full)."""
        peers = {client: server, server: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            try:
                while self._wait_until_flowing(client):
                    for key, _ in selector.select(TICK_SECONDS):
                        if self.mode != "pass":
                            break
                        data = key.fileobj.recv(CHUNK)
                        if not data:
                            return
                        peers[key.fileobj].sendall(data)
            except OSError:
                return
            finally:
                with self.changed:
                    for sock in peers:
                        self.connections.discard(sock)
                        with suppress(OSError):
                            sock.close()

    def _wait_until_flowing(self, client: socket.socket) -> bool:
        with self.changed:
            while self.mode == "pause" and client in self.connections:
                self.changed.wait(TICK_SECONDS)
            return self.mode == "pass" and client in self.connections and not self.closed
