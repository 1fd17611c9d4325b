"""A slowloris client, run as its own process (``python -m tests.common.slowloris PORT SOCKETS
SECONDS [idle]``) so that it competes with the server as a real client does, not for one
interpreter.

It holds ``SOCKETS`` connections to 127.0.0.1:PORT from 127.0.0.2 (another client than the
tests' 127.0.0.1): half of them send nothing, half a request line and one header, then wait
(with ``idle``, none sends anything: ``benchmarks/hostile_clients.py``).
Each one the server closes (or answers) is opened again at once. It prints ``ready`` when all
are open and stops after ``SECONDS``, printing how many times it had to reopen a socket."""

from __future__ import annotations

import selectors
import socket
import sys
import time


def _open(selector: selectors.BaseSelector, port: int, index: int, idle: bool) -> None:
    connection = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
    if index % 2 and not idle:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n")
    connection.setblocking(False)
    selector.register(connection, selectors.EVENT_READ, index)


def main(port: int, sockets: int, seconds: float, idle: bool = False) -> None:
    selector = selectors.DefaultSelector()
    for index in range(sockets):
        _open(selector, port, index, idle)
    print("ready", flush=True)
    reopened = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.05):
            connection = key.fileobj
            assert isinstance(connection, socket.socket)
            selector.unregister(connection)
            connection.close()
            _open(selector, port, key.data, idle)
            reopened += 1
    print(f"reopened {reopened}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:] == ["idle"])
