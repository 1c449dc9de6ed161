"""A TCP proxy on 127.0.0.1 that injects faults into protocol frames, for robustness tests.

Put it between the host and a device's socket (QEMU's UART, a host board) and ask for a fault on
the n-th frame of one direction: flip a byte (the CRC must catch it) or drop the connection.
"""
from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass, field

from edgeprune.profile.closing import Closing
from edgeprune.profile.frames import CRC, HEADER, SYNC

TO_DEVICE, TO_HOST = "to_device", "to_host"


@dataclass
class _Stream:
    """Bytes of one direction, cut into frames as they complete."""

    direction: str
    pending: bytearray = field(default_factory=bytearray)
    frames: int = 0

    def take(self) -> list[bytes]:
        """Complete frames (and any bytes before a sync byte, passed through as they are)."""
        out = []
        while self.pending:
            if self.pending[0] != SYNC:
                end = self.pending.find(SYNC)
                end = len(self.pending) if end < 0 else end
            elif len(self.pending) >= HEADER.size:
                end = HEADER.size + HEADER.unpack_from(self.pending)[3] + CRC.size
                if end > len(self.pending):
                    break
            else:
                break
            out.append(bytes(self.pending[:end]))
            del self.pending[:end]
        return out


class FaultProxy(Closing):
    """Forwards 127.0.0.1:`port` (see `url`) to `upstream_port`, one connection at a time."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._faults: dict[tuple[str, int], tuple[str, int]] = {}
        self.applied: list[tuple[str, int, str]] = []  # (direction, frame index, action)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def flip(self, direction: str, frame: int, offset: int = HEADER.size) -> None:
        """Inverts byte `offset` of the `frame`-th frame (from 0) sent in `direction`."""
        self._faults[(direction, frame)] = ("flip", offset)

    def drop(self, direction: str, frame: int) -> None:
        """Closes both connections instead of forwarding the `frame`-th frame of `direction`."""
        self._faults[(direction, frame)] = ("drop", 0)

    def close(self) -> None:
        self._closing = True
        self._thread.join()
        self._server.close()


    def _serve(self) -> None:
        while not self._closing:
            if not select.select([self._server], [], [], 0.1)[0]:
                continue
            client, _ = self._server.accept()
            with client, socket.create_connection(("127.0.0.1", self.upstream_port)) as device:
                self._pump(client, device)

    def _pump(self, client: socket.socket, device: socket.socket) -> None:
        streams = {client: (_Stream(TO_DEVICE), device), device: (_Stream(TO_HOST), client)}
        while not self._closing:
            readable, _, _ = select.select(list(streams), [], [], 0.1)
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                stream, sink = streams[source]
                stream.pending += data
                for chunk in stream.take():
                    if not self._forward(stream, chunk, sink):
                        return

    def _forward(self, stream: _Stream, chunk: bytes, sink: socket.socket) -> bool:
        """Sends `chunk` with its fault applied; False if the connection is to be dropped."""
        if chunk[0] == SYNC:
            index, stream.frames = stream.frames, stream.frames + 1
            action, offset = self._faults.get((stream.direction, index), ("", 0))
            if action:
                self.applied.append((stream.direction, index, action))
            if action == "drop":
                return False
            if action == "flip":
                chunk = chunk[:offset] + bytes([chunk[offset] ^ 0xFF]) + chunk[offset + 1:]
        sink.sendall(chunk)
        return True
