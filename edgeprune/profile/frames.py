"""Frames of the profiling protocol (targets/runtime/ep_protocol.h): constants, encode, decode.

A frame is `sync 0xEB | type u8 | seq u8 | length u16 | payload | crc32 u32`, little-endian, the
CRC (zlib's CRC-32) taken over type..payload. Replies have type 0x80|command and a payload that
starts with a status byte.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

SYNC = 0xEB
REPLY = 0x80
HEADER = struct.Struct("<BBBH")  # sync, type, seq, length
CRC = struct.Struct("<I")
VERSION = 1


class Command(IntEnum):
    HELLO = 0x01
    INFO = 0x02
    WRITE_INPUT = 0x03
    INFER = 0x04
    READ_OUTPUT = 0x05
    READ_LAYER_TICKS = 0x06
    READ_STACK = 0x07


class Status(IntEnum):
    OK = 0
    CRC = 1
    LENGTH = 2
    TIMEOUT = 3
    COMMAND = 4
    ARGUMENT = 5
    SEQUENCE = 6
    INVOKE = 7


# Statuses that say the request never arrived whole: sending it again is the fix.
TRANSPORT_ERRORS = frozenset({Status.CRC, Status.TIMEOUT})


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes

    @property
    def status(self) -> Status:
        """The status byte of a reply (unknown codes raise ValueError)."""
        return Status(self.payload[0])


def encode(type_: int, seq: int, payload: bytes = b"") -> bytes:
    """The bytes of one frame."""
    body = HEADER.pack(SYNC, type_, seq & 0xFF, len(payload))[1:] + payload
    return bytes([SYNC]) + body + CRC.pack(zlib.crc32(body))


class FrameError(Exception):
    """Bytes that are not a well-formed frame (bad CRC, cut short)."""


def decode(data: bytes) -> Frame:
    """The frame that `data` holds exactly."""
    if len(data) < HEADER.size + CRC.size or data[0] != SYNC:
        raise FrameError(f"not a frame: {data[:16].hex()}")
    _, type_, seq, length = HEADER.unpack_from(data)
    if len(data) != HEADER.size + length + CRC.size:
        raise FrameError(f"frame length {length} does not match its {len(data)} bytes")
    body = data[1:HEADER.size + length]
    if zlib.crc32(body) != CRC.unpack_from(data, HEADER.size + length)[0]:
        raise FrameError("frame CRC mismatch")
    return Frame(type_, seq, data[HEADER.size:HEADER.size + length])
