"""Fuzzing the device side's frame parser: the C source built natively with AddressSanitizer and
UBSan (tests/c/ep_fuzz_main.c around tests/c/fake_model.c), fed seeded random, mutated and valid
frames. Every reply must be a well-formed frame; every bad frame gets exactly one error reply;
well-formed frames get the reply a small model of the protocol predicts."""
from __future__ import annotations

import random
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edgeprune.profile.frames import CRC, HEADER, REPLY, SYNC, Command, Frame, FrameError, Status, decode, encode
from edgeprune.testing import native

C_DIR = Path(__file__).parent / "c"
MAX_PAYLOAD = 512
INPUT_BYTES, LAYERS = 1000, 70
INFO_BYTES = 769  # the fake model's info blob: 40 header, 36 + 39 + 22 tensors, 2 + 70 * 9 layers
OUTPUT_BYTES = (INPUT_BYTES, 4)
FRAMING_ERRORS = {Status.CRC, Status.LENGTH, Status.TIMEOUT}


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    return native.build([C_DIR / "fake_model.c"], tmp_path_factory.mktemp("fuzz") / "ep_fuzz",
                        main=C_DIR / "ep_fuzz_main.c", sanitize=True)


def run_cases(harness: Path, cases: list[bytes]) -> list[list[Frame]]:
    """Each case's replies, as the harness answered them."""
    stdin = b"".join(struct.pack("<I", len(c)) + c for c in cases)
    result = subprocess.run([str(harness)], input=stdin, capture_output=True, timeout=60)
    assert result.returncode == 0 and not result.stderr, result.stderr.decode(errors="replace")[-3000:]
    replies, out, at = [], result.stdout, 0
    for _ in cases:
        (length,), at = struct.unpack_from("<I", out, at), at + 4
        replies.append(split_frames(out[at:at + length]))
        at += length
    assert at == len(out)
    return replies


def split_frames(data: bytes) -> list[Frame]:
    frames = []
    while data:
        end = HEADER.size + HEADER.unpack_from(data)[3] + CRC.size
        frames.append(decode(data[:end]))  # raises if the device sent a malformed frame
        data = data[end:]
    return frames


def leading_frame(data: bytes) -> Frame | None:
    """The frame the device will read from the start of `data`, if it is well-formed."""
    if len(data) < HEADER.size or data[0] != SYNC:
        return None
    try:
        return decode(data[:HEADER.size + HEADER.unpack_from(data)[3] + CRC.size])
    except FrameError:
        return None


@dataclass
class Oracle:
    """What the device should answer to a well-formed frame: session, retries, buffers."""

    in_session: bool = False
    last: tuple[int, int] = (-1, -1)  # seq and CRC of the last executed frame
    last_reply: Frame | None = None
    inputs: bytearray = field(default_factory=lambda: bytearray(INPUT_BYTES))
    outputs: list[bytes] | None = None

    def check(self, frame: Frame, wire: bytes, reply: Frame) -> None:
        crc = zlib.crc32(wire[1:HEADER.size + len(frame.payload)])
        assert (reply.seq, reply.type) == (frame.seq, frame.type | REPLY)
        if len(frame.payload) > MAX_PAYLOAD:
            assert reply.status == Status.LENGTH
        elif frame.type & REPLY:
            assert reply.status == Status.COMMAND
        elif frame.type == Command.HELLO or (self.in_session and frame.seq == (self.last[0] + 1) & 0xFF):
            self.execute(frame, reply)
            self.in_session, self.last, self.last_reply = True, (frame.seq, crc), reply
        elif self.in_session and (frame.seq, crc) == self.last:
            assert reply == self.last_reply
        else:
            assert reply.status == Status.SEQUENCE

    def execute(self, frame: Frame, reply: Frame) -> None:
        p, data = frame.payload, reply.payload[1:]
        if frame.type not in Command._value2member_map_:
            assert reply.status == Status.COMMAND
            return
        expected_ok = self.valid(Command(frame.type), p)
        if frame.type == Command.INFER and expected_ok and self.inputs[0] == 0xEE:
            assert reply.status == Status.INVOKE and data == struct.pack("<iI", 42, 0)
            return
        assert reply.status == (Status.OK if expected_ok else Status.ARGUMENT), (frame, reply)
        if not expected_ok:
            assert data == b""
        elif frame.type == Command.WRITE_INPUT:
            offset = struct.unpack_from("<I", p, 1)[0]
            self.inputs[offset:offset + len(p) - 5] = p[5:]
        elif frame.type == Command.INFER:
            plus_one = bytes((b + 1) & 0xFF for b in self.inputs)
            self.outputs = [plus_one, struct.pack("<i", sum(struct.unpack(f"{INPUT_BYTES}b", self.inputs)))]
            assert len(data) == 4 + 8 * struct.unpack("<I", p)[0]
        elif frame.type == Command.READ_OUTPUT and self.outputs is not None:
            index, offset, length = struct.unpack("<BIH", p)
            assert data == self.outputs[index][offset:offset + length]
        elif frame.type == Command.INFO:
            offset = struct.unpack("<I", p)[0]
            assert data[:4] == struct.pack("<I", INFO_BYTES)
            assert len(data) == 4 + min(INFO_BYTES - offset, MAX_PAYLOAD - 5)
        elif frame.type == Command.READ_LAYER_TICKS:
            first = struct.unpack("<H", p)[0]
            count = min(LAYERS - first, (MAX_PAYLOAD - 5) // 8)
            assert data[:4] == struct.pack("<HH", LAYERS, count) and len(data) == 4 + 8 * count
        elif frame.type == Command.READ_STACK:
            assert data == struct.pack("<I", 1234)

    @staticmethod
    def valid(command: Command, p: bytes) -> bool:
        if command == Command.WRITE_INPUT:
            return len(p) >= 5 and p[0] == 0 and struct.unpack_from("<I", p, 1)[0] + len(p) - 5 <= INPUT_BYTES
        if command == Command.READ_OUTPUT:
            if len(p) != 7:
                return False
            index, offset, length = struct.unpack("<BIH", p)
            return index < 2 and length <= MAX_PAYLOAD - 1 and offset + length <= OUTPUT_BYTES[index]
        if command == Command.INFER:
            return len(p) == 4 and 1 <= struct.unpack("<I", p)[0] <= (MAX_PAYLOAD - 5) // 8
        if command == Command.INFO:
            return len(p) == 4 and struct.unpack("<I", p)[0] <= INFO_BYTES
        if command == Command.READ_LAYER_TICKS:
            return len(p) == 2 and struct.unpack("<H", p)[0] <= LAYERS
        return len(p) == 0  # HELLO, READ_STACK


def plausible_payload(rng: random.Random, command: int) -> bytes:
    """Arguments near the edges of what the fake model accepts."""
    edge = lambda n: rng.choice([0, 1, n - 1, n, n + 1, rng.randrange(n + 2), rng.randrange(1 << 32)]) % (1 << 32)
    if command == Command.WRITE_INPUT:
        data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 17, 200, 507, 508])))
        return struct.pack("<BI", rng.choice([0, 0, 0, 1]), edge(INPUT_BYTES)) + data
    if command == Command.READ_OUTPUT:
        return struct.pack("<BIH", rng.choice([0, 0, 1, 2]), edge(INPUT_BYTES), edge(600) & 0xFFFF)
    if command == Command.INFER:
        return struct.pack("<I", rng.choice([0, 1, 2, 63, 64]))
    if command == Command.INFO:
        return struct.pack("<I", edge(900))
    if command == Command.READ_LAYER_TICKS:
        return struct.pack("<H", edge(LAYERS) & 0xFFFF)
    if rng.random() < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
    return b""


def mutate(rng: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randint(1, 3)):
        kind, at = rng.randrange(5), rng.randrange(1, len(data))
        if kind == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data[at] = rng.randrange(256)
        elif kind == 2:
            del data[at:]
        elif kind == 3:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            data[3:5] = struct.pack("<H", rng.choice([0, 1, 511, 512, 513, 0xFFFF, rng.randrange(1 << 16)]))
        if len(data) < 2:
            data = bytearray(frame[:2])
    return bytes(data)


def make_cases(seed: int, count: int) -> list[bytes]:
    """Well-formed frames (mostly next in sequence), retries, mutated frames and noise."""
    rng, cases, seq = random.Random(seed), [encode(Command.HELLO, 0)], 0
    commands = [*Command, 0x00, 0x7F, 0x55, Command.INFO | REPLY]
    for _ in range(count):
        command, roll = rng.choice(commands), rng.random()
        frame_seq = (seq + 1) & 0xFF if rng.random() < 0.9 else rng.randrange(256)
        payload = plausible_payload(rng, command)
        frame = encode(command, frame_seq, payload)
        if roll < 0.45:
            cases.append(frame)
            executes = command == Command.HELLO or frame_seq == (seq + 1) & 0xFF
            if executes and len(payload) <= MAX_PAYLOAD and not command & REPLY:
                seq = frame_seq
        elif roll < 0.5:
            cases.append(cases[-1])  # a retry: the previous case again
        elif roll < 0.9:
            cases.append(mutate(rng, frame))
        else:
            noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 700)))
            cases.append(bytes([SYNC]) + noise if rng.random() < 0.5 else noise)
    return cases


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzzed_frames(harness: Path, seed: int) -> None:
    cases = make_cases(seed, 4000)
    oracle, bad = Oracle(), 0
    for case, replies in zip(cases, run_cases(harness, cases)):
        frame = leading_frame(case)
        if frame is not None:
            assert replies, case.hex()
            oracle.check(frame, case, replies[0])
        elif case[:1] == bytes([SYNC]):
            bad += 1
            assert len(replies) == 1 and replies[0].status in FRAMING_ERRORS, (case.hex(), replies)
    assert bad > 1000  # the mix really holds bad frames
