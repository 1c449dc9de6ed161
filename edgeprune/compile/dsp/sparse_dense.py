"""int8 dense layer (x [M, K] times weights [N, K]) with block-sparse weights: only the blocks of
four reduction elements that hold a non-zero weight are stored and multiplied.

Storage (`compress`), per layer: the kept blocks' weights as int8 words (four bytes, in the order
of the dense int8 layout, `packing.py`), one block index per kept block (uint8 where the row has
at most 256 blocks, else int16), and per output row where its kept blocks start (int32, N + 1).
A block is one SMLAD pair of pairs: the kernel widens each row of x once into an int16 column
in the int8 layout's lane order, then for each output walks its kept blocks: load the block
index, the weight word and the column's four lanes (LDRD), SXTB16 twice, SMLAD twice.

`choose` picks dense or sparse per layer from the bytes and an instruction estimate (constants
measured on the M4 under QEMU, below): sparse pays in instructions below about 40 % (128 inputs)
to 50 % (640 inputs) of blocks kept, and in flash below about 80 % (5 bytes a kept block against 4 a
block)."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.defaults import SPARSE_CHOICES
from edgeprune.compile.dsp.gemm import _high, _low
from edgeprune.compile.dsp.intrinsics import smlad, sxtb16, sxtb16_odd
from edgeprune.compile.dsp.packing import padded_length
from edgeprune.compile.dsp.widen import row_widener
from edgeprune.compile.int8_kernels import Requantize

BLOCK = 4  # reduction elements per block: one int8 weight word, two SMLAD
# Instructions per row of x: least squares over QEMU counts on the M4 of dense layers 640->128,
# 128->128, 512->64, 128->640, 8->128 and 128->8 with 10 to 70 % of their blocks kept; reproduce
# with scripts/bench/sparse_fit.py (table of measured against estimated, build/bench/sparse_fit.json).
DENSE_PER_BLOCK, DENSE_PER_OUTPUT = 5.4, 15    # dsp/dense.py: tile-packed int8 GEMM, short requantize where exact
SPARSE_PER_BLOCK, SPARSE_PER_OUTPUT = 9.9, 67  # this kernel: per kept block; per output (set-up, tails, requantize)


@dataclass(frozen=True)
class BlockSparse:
    """A weight matrix [N, K] as kept blocks of four along K: `values` (int32 words, four int8
    weights each), `indices` (block number within its row), `starts` (row n's kept blocks are
    starts[n]:starts[n+1])."""

    values: np.ndarray
    indices: np.ndarray
    starts: np.ndarray
    depth: int

    @property
    def outputs(self) -> int:
        return len(self.starts) - 1

    @property
    def kept(self) -> int:
        return int(self.starts[-1])

    @property
    def blocks(self) -> int:
        """All blocks of the dense matrix, kept or not."""
        return self.outputs * padded_length(self.depth) // BLOCK

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + self.indices.nbytes + self.starts.nbytes

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The three constants the kernel takes, none empty (a layer with no kept block stores one zero block)."""
        if self.kept:
            return self.values, self.indices, self.starts
        return np.zeros(1, np.int32), np.zeros(1, self.indices.dtype), self.starts


def compress(weight: np.ndarray) -> BlockSparse:
    """The blocks of four along K of int8-valued `weight` [N, K] (zero-padded to whole blocks)
    that hold a non-zero weight."""
    outputs, depth = weight.shape
    padded = np.zeros((outputs, padded_length(depth)), np.int8)
    padded[:, :depth] = weight
    blocks = padded.reshape(outputs, -1, BLOCK)
    keep = np.any(blocks != 0, axis=2)
    rows, numbers = np.nonzero(keep)  # row-major: each row's blocks in order
    index_dtype = np.uint8 if blocks.shape[1] <= 256 else np.int16
    starts = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    values = np.ascontiguousarray(blocks[rows, numbers]).view(np.int32).reshape(-1)
    return BlockSparse(values, numbers.astype(index_dtype), starts, depth)


@dataclass(frozen=True)
class Choice:
    """Dense or sparse for one layer, with the bytes and instruction estimates behind it."""

    sparse: bool
    dense_bytes: int
    sparse_bytes: int
    dense_instructions: int
    sparse_instructions: int
    kept: float  # share of blocks kept

    def describe(self) -> str:
        return (f"{'sparse' if self.sparse else 'dense'}: {self.kept:.0%} of 4-blocks non-zero, "
                f"{self.sparse_bytes:,} B sparse vs {self.dense_bytes:,} B dense, est. instructions "
                f"{self.sparse_instructions:,} sparse vs {self.dense_instructions:,} dense")


def choose(sparse: BlockSparse, dense_bytes: int, rows: int, mode: str) -> Choice:
    """`mode` "on" or "off" forces the choice; "auto" takes sparse where it stores fewer bytes
    and its estimated instructions are no more than the dense kernel's."""
    if mode not in SPARSE_CHOICES:
        raise ValueError(f"unknown sparse mode {mode!r}; choose one of {', '.join(SPARSE_CHOICES)}")
    dense_instr = round(rows * (sparse.blocks * DENSE_PER_BLOCK + sparse.outputs * DENSE_PER_OUTPUT))
    sparse_instr = round(rows * (sparse.kept * SPARSE_PER_BLOCK + sparse.outputs * SPARSE_PER_OUTPUT))
    wins = sparse.nbytes < dense_bytes and sparse_instr <= dense_instr
    return Choice(mode == "on" or (mode == "auto" and wins), dense_bytes, sparse.nbytes, dense_instr, sparse_instr,
                  sparse.kept / max(sparse.blocks, 1))


@functools.cache  # see conv.conv2d
def sparse_dense(x_shape: tuple[int, ...], outputs: int, kept: int, index_dtype: str,
                 requantize: Requantize) -> tirx.PrimFunc:
    """The PrimFunc (x, values, indices, starts, bias, multiplier, shift, y) of a dense layer on x
    of `x_shape` (..., K) with `outputs` outputs per row and `kept` stored blocks (`BlockSparse.arrays`)."""
    depth = x_shape[-1]
    rows = math.prod(x_shape[:-1])
    padded = padded_length(depth)
    stored = max(kept, 1)
    widen = row_widener(depth, "int8")
    y_shape = (*x_shape[:-1], outputs)

    @T.prim_func
    def kernel(x_in: T.Buffer(x_shape, "int8"), values: T.Buffer((stored,), "int32"),
               indices: T.Buffer((stored,), index_dtype), starts: T.Buffer((outputs + 1,), "int32"),
               bias: T.Buffer((outputs,), "int32"), multiplier: T.Buffer((outputs,), "int32"),
               shift: T.Buffer((outputs,), "int8"), y_out: T.Buffer(y_shape, "int8")):
        x = T.decl_buffer((rows * depth,), "int8", data=x_in.data)
        x32 = T.decl_buffer((rows * depth // 4,), "int32", data=x_in.data)
        y = T.decl_buffer((rows * outputs,), "int8", data=y_out.data)
        acc = T.decl_buffer((1,), "int32")
        col16 = T.decl_buffer((padded,), "int16")
        col32 = T.decl_buffer((padded // 2,), "int32", data=col16.data)
        col = T.decl_buffer((padded // 4,), "int64", data=col16.data)
        for r in range(rows):
            widen(x, x32, col16, col32, r, 0, padded // 4)
            for n in range(outputs):
                acc[0] = bias[n]
                for j in range(starts[n], starts[n + 1]):
                    acc[0] = smlad(_low(col[T.Cast("int32", indices[j])]), sxtb16(values[j]), acc[0])
                    acc[0] = smlad(_high(col[T.Cast("int32", indices[j])]), sxtb16_odd(values[j]), acc[0])
                y[r * outputs + n] = requantize(acc[0], multiplier[n], shift[n])

    return kernel
