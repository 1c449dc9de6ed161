"""The profiling protocol's commands as methods: info, write inputs, infer, read outputs, ticks."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from edgeprune.errors import DeviceError
from edgeprune.profile.closing import Closing
from edgeprune.profile.frames import Command
from edgeprune.profile.link import Link

DTYPES = {1: "int8", 2: "uint8", 3: "int16", 4: "int32", 5: "float32"}
TICKS = struct.Struct("<Q")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # a numpy dtype name
    shape: tuple[int, ...]
    nbytes: int
    scale: float
    zero_point: int


@dataclass(frozen=True)
class DeviceInfo:
    version: int
    max_payload: int
    board: str
    model_id: str
    tick_hz: int  # ticks per second; 0 if the device does not know
    arena_bytes: int
    workspace_bytes: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    layers: tuple[str, ...]


class _Reader:
    """Little-endian fields read one after another from the info blob."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def text(self) -> str:
        length = self.take("B")
        self.offset += length
        return self.data[self.offset - length:self.offset].decode("utf-8", "replace")

    def tensor(self) -> TensorInfo:
        name, dtype, ndim = self.text(), self.take("B"), self.take("B")
        shape = tuple(self.take("I") for _ in range(ndim))
        nbytes, scale, zero_point = self.take("Ifi")
        return TensorInfo(name, DTYPES.get(dtype, f"dtype{dtype}"), shape, nbytes, scale, zero_point)


def parse_info(blob: bytes) -> DeviceInfo:
    r = _Reader(blob)
    version, max_payload, board, model_id = r.take("B"), r.take("H"), r.text(), r.text()
    tick_hz, arena, workspace, n_in, n_out = r.take("IIIBB")
    inputs = tuple(r.tensor() for _ in range(n_in))
    outputs = tuple(r.tensor() for _ in range(n_out))
    layers = tuple(r.text() for _ in range(r.take("H")))
    return DeviceInfo(version, max_payload, board, model_id, tick_hz, arena, workspace, inputs,
                      outputs, layers)


class DeviceClient(Closing):
    """A device that speaks the protocol at `url` (any pyserial URL)."""

    def __init__(self, url: str, *, baudrate: int = 115200, timeout: float = 2.0,
                 retries: int = 3, infer_timeout: float = 60.0) -> None:
        self.link = Link(url, baudrate=baudrate, timeout=timeout, retries=retries)
        self.infer_timeout = infer_timeout
        self._info: DeviceInfo | None = None

    def close(self) -> None:
        self.link.close()


    def info(self) -> DeviceInfo:
        if self._info is None:
            blob, total = b"", None
            while total is None or len(blob) < total:
                reply = self.link.request(Command.INFO, struct.pack("<I", len(blob)))
                if total is not None and len(reply) == 4:
                    raise DeviceError(f"{self.link.url}: INFO stopped at {len(blob)} of {total} bytes")
                total, blob = int.from_bytes(reply[:4], "little"), blob + reply[4:]
            self._info = parse_info(blob)
        return self._info

    def write_input(self, index: int, data: bytes) -> None:
        step = self.link.max_payload - 5
        for offset in range(0, len(data), step):
            self.link.request(Command.WRITE_INPUT,
                              struct.pack("<BI", index, offset) + data[offset:offset + step])

    def infer(self, runs: int = 1) -> list[int]:
        """Runs the model `runs` times; the ticks of each run."""
        per_reply = (self.link.max_payload - 5) // TICKS.size
        ticks: list[int] = []
        while len(ticks) < runs:
            batch = min(per_reply, runs - len(ticks))
            reply = self.link.request(Command.INFER, struct.pack("<I", batch),
                                      timeout=self.infer_timeout)
            ticks += [t for (t,) in TICKS.iter_unpack(reply[4:4 + TICKS.size * batch])]
        return ticks

    def read_output(self, index: int) -> bytes:
        nbytes, step = self.info().outputs[index].nbytes, self.link.max_payload - 1
        return b"".join(self.link.request(Command.READ_OUTPUT,
                                          struct.pack("<BIH", index, offset, min(step, nbytes - offset)))
                        for offset in range(0, nbytes, step))

    def layer_ticks(self) -> list[int]:
        """Ticks of each layer in the last run."""
        ticks: list[int] = []
        while True:
            reply = self.link.request(Command.READ_LAYER_TICKS, struct.pack("<H", len(ticks)))
            layers, count = struct.unpack_from("<HH", reply)
            if count == 0 and len(ticks) < layers:
                raise DeviceError(f"{self.link.url}: layer ticks stopped at {len(ticks)} of {layers}")
            ticks += [t for (t,) in TICKS.iter_unpack(reply[4:4 + TICKS.size * count])]
            if len(ticks) >= layers:
                return ticks

    def stack_high_water(self) -> int:
        return struct.unpack("<I", self.link.request(Command.READ_STACK))[0]
