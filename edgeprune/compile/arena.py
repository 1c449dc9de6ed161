"""Arena placement: where each activation lives, from the tensors' lifetimes over the plan's steps.

A buffer is a set of tensors that share bytes: a tensor and its zero-copy views, and (in-place
layers) a layer's output with the input it overwrites. A buffer lives from the first step that
writes one of its tensors to the last step that reads one; with the model's inputs and outputs in
the arena, an input lives from before the first step and an output until after the last. Buffers
are placed greedily, largest first, at the lowest offset free over their lifetime (TFLM's greedy
planner). The liveness bound is the most bytes of buffers live at one step: with aliasing, that of
the in-place schedule."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable

Key = Hashable  # ("arena", tensor id), ("input", i) or ("output", i)


@dataclass
class Buffer:
    """Tensors sharing one arena region, live over steps [first, last]; `offset` once placed."""

    keys: list[Key]
    nbytes: int
    first: int
    last: int
    offset: int = -1

    def live_at(self, step: int) -> bool:
        return self.first <= step <= self.last

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last


def lifetimes(steps: list[list[tuple[Key, int]]], inputs: list[tuple[Key, int]],
              outputs: list[tuple[Key, int]]) -> dict[Key, Buffer]:
    """One buffer per tensor key: `steps` lists each step's (key, bytes) arguments; the (key, bytes)
    `inputs` live from step -1 (written before the first step), `outputs` to step len(steps) (read
    after the last)."""
    buffers: dict[Key, Buffer] = {key: Buffer([key], nbytes, -1, -1) for key, nbytes in inputs}
    for t, args in enumerate(steps):
        for key, nbytes in args:
            buffer = buffers.setdefault(key, Buffer([key], nbytes, t, t))
            buffer.nbytes, buffer.last = max(buffer.nbytes, nbytes), t
    for key, nbytes in outputs:
        buffers.setdefault(key, Buffer([key], nbytes, len(steps), len(steps))).last = len(steps)
    return buffers


def merge(buffers: dict[Key, Buffer], kept: Key, joined: Key) -> None:
    """`joined`'s tensors take `kept`'s bytes (an in-place layer): one buffer over both lifetimes."""
    a, b = buffers[kept], buffers[joined]
    if a is b:
        return
    a.keys += b.keys
    a.nbytes, a.first, a.last = max(a.nbytes, b.nbytes), min(a.first, b.first), max(a.last, b.last)
    for key in b.keys:
        buffers[key] = a


def distinct(buffers: dict[Key, Buffer]) -> list[Buffer]:
    seen: dict[int, Buffer] = {}
    for buffer in buffers.values():
        seen.setdefault(id(buffer), buffer)
    return list(seen.values())


def place(buffers: list[Buffer], align: Callable[[int], int]) -> int:
    """Give every buffer an offset (largest first, lowest free offset); returns the arena's size."""
    placed: list[Buffer] = []
    for buffer in sorted(buffers, key=lambda b: (-b.nbytes, b.first)):
        offset = 0
        for other in sorted((p for p in placed if p.overlaps_in_time(buffer)), key=lambda p: p.offset):
            if offset + buffer.nbytes <= other.offset:
                break
            offset = max(offset, align(other.offset + other.nbytes))
        buffer.offset = offset
        placed.append(buffer)
    return max((align(b.offset + b.nbytes) for b in placed), default=0)


def liveness_bound(buffers: list[Buffer], step_count: int) -> int:
    """The most bytes live during any one step (before the first and after the last included)."""
    return max((sum(b.nbytes for b in buffers if b.live_at(t)) for t in range(-1, step_count + 1)), default=0)
