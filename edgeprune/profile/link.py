"""A framed, retrying connection to a device over any pyserial URL.

`serial.serial_for_url` makes a real port (`/dev/ttyACM0`), QEMU's UART on a TCP socket
(`socket://127.0.0.1:PORT`) and pyserial's `loop://` one code path. Every wait has a deadline,
so silence or garbage ends in a DeviceError, never a hang; a reply lost or corrupted on the way
is asked for again with the same sequence number, which the device answers from its cache
without running the command twice.
"""
from __future__ import annotations

import random
import time

import serial

from edgeprune.errors import DeviceError
from edgeprune.profile.closing import Closing
from edgeprune.profile.frames import (CRC, HEADER, REPLY, SYNC, TRANSPORT_ERRORS, Command, Frame,
                                      FrameError, Status, decode, encode)

STATUS_TEXT = {
    Status.LENGTH: "the frame was longer than the device accepts",
    Status.COMMAND: "the device does not know this command",
    Status.ARGUMENT: "the device rejected the arguments (index, size or range)",
    Status.SEQUENCE: "the device lost the session (did it reset?)",
    Status.INVOKE: "the model's invoke failed on the device",
}
QUIET_SECONDS = 0.1  # silence that ends a drain after a broken reply


def _name(command: int) -> str:
    return Command(command).name if command in Command._value2member_map_ else f"command 0x{command:02x}"


class _Silence(Exception):
    """No complete frame before the deadline."""


class Link(Closing):
    """Sends commands and returns their replies' data; raises DeviceError on failure."""

    def __init__(self, url: str, *, baudrate: int = 115200, timeout: float = 2.0,
                 retries: int = 3, max_garbage: int = 4096) -> None:
        self.url, self.timeout, self.retries, self.max_garbage = url, timeout, retries, max_garbage
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise DeviceError(f"cannot open {url}: {exc}") from exc
        self._seq = random.randrange(256)  # HELLO takes any; then each command the next
        self.max_payload = 0
        try:
            hello = self.request(Command.HELLO)
        except DeviceError:
            self.close()
            raise
        self.version, self.max_payload = hello[0], int.from_bytes(hello[1:3], "little")

    def close(self) -> None:
        self._port.close()

    def request(self, command: int, payload: bytes = b"", *, timeout: float | None = None) -> bytes:
        """The reply data (after the OK status) of `command`; retries lost or broken frames."""
        if self.max_payload and len(payload) > self.max_payload:
            raise ValueError(f"payload of {len(payload)} bytes exceeds {self.max_payload}")
        self._seq = (self._seq + 1) & 0xFF
        frame, problem, wait = encode(command, self._seq, payload), "no reply", timeout or self.timeout
        for _ in range(self.retries + 1):
            self._write(frame)
            try:
                reply = self._read_reply(command, self._seq, time.monotonic() + wait)
            except _Silence:
                problem = f"no reply within {wait:g} s"
                continue
            except FrameError as exc:
                problem = f"a broken reply ({exc})"
                self._drain()
                continue
            if reply.payload[0] in TRANSPORT_ERRORS:
                problem = f"the device received a broken request ({Status(reply.payload[0]).name})"
                continue
            return self._data(command, reply)
        raise DeviceError(f"{self.url}: {_name(command)} failed after {self.retries + 1} attempts: "
                          f"{problem}")

    def _data(self, command: int, reply: Frame) -> bytes:
        status = reply.payload[0]
        if status == Status.OK:
            return reply.payload[1:]
        text = STATUS_TEXT.get(status, f"unknown status {status}")
        if status == Status.INVOKE:
            code, run = int.from_bytes(reply.payload[1:5], "little", signed=True), \
                int.from_bytes(reply.payload[5:9], "little")
            text += f" (code {code} in run {run})"
        raise DeviceError(f"{self.url}: {_name(command)}: {text}")

    def _write(self, frame: bytes) -> None:
        try:
            self._port.write(frame)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(f"{self.url}: connection lost while sending: {exc}") from exc

    def _read_reply(self, command: int, seq: int, deadline: float) -> Frame:
        """The reply to (command, seq), or a transport error reply; stale replies are skipped."""
        while True:
            reply = self._read_frame(deadline)
            if not reply.payload:
                raise FrameError("reply without a status byte")
            if (reply.type == command | REPLY and reply.seq == seq) or reply.payload[0] in TRANSPORT_ERRORS:
                return reply

    def _read_frame(self, deadline: float) -> Frame:
        skipped = bytearray()
        while (first := self._read(1, deadline))[0] != SYNC:
            skipped += first
            if len(skipped) > self.max_garbage:
                raise DeviceError(f"{self.url}: the device answers bytes that are not frames of the "
                                  f"edgeprune protocol (is the right firmware running?): "
                                  f"{bytes(skipped[:32]).hex(' ')} ...")
        header = first + self._read(HEADER.size - 1, deadline)
        length = HEADER.unpack(header)[3]
        return decode(header + self._read(length + CRC.size, deadline))

    def _read(self, count: int, deadline: float) -> bytes:
        data = b""
        while len(data) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Silence()
            self._port.timeout = remaining
            try:
                data += self._port.read(count - len(data))
            except (serial.SerialException, OSError) as exc:
                raise DeviceError(f"{self.url}: connection lost: {exc}") from exc
        return data

    def _drain(self) -> None:
        """Reads until the line is quiet, so that the rest of a broken reply is not a new frame."""
        try:
            self._read(self.max_garbage, time.monotonic() + QUIET_SECONDS)
        except _Silence:
            pass
