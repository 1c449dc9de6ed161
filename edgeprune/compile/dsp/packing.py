"""Weights re-laid out at compile time for the GEMM kernels (`gemm.py`).

The reduction (input channel x kernel row x kernel column, in ONNX's OIHW order) is padded with
zeros to a multiple of 4, so that every row is read as whole 32-bit words. Two layouts:
- "int16": each weight widened to int16 (two bytes per weight): two weights per word, ready for
  SMLAD, nothing to widen in the loop;
- "int8": one byte per weight, four per word, widened in the loop with SXTB16 (bytes 0 and 2) and
  SXTB16 ROR #8 (bytes 1 and 3); the inputs' column is laid out in that same order.
Convolutions re-lay the int16 layout out by pairs (`interleave_pairs`, except on the Cortex-M7):
two output channels' rows, and two pixels' columns, interleaved two elements at a time, so that
one LDRD reads a pair of elements of both (`gemm.Gemm.tile`).
A third, MVE, is the M55's Helium GEMM's (compile/mve/gemm.py): int8 weights and an int8 column,
both in reduction order, padded to a multiple of 16 (one int8x16 vector)."""
from __future__ import annotations

import numpy as np

LAYOUTS = ("int16", "int8")
MVE = "mve"


def padded_length(depth: int, layout: str = "int16") -> int:
    """The reduction length rounded up to a whole number of 4-element groups (16-element
    vectors in the MVE layout)."""
    quantum = 16 if layout == MVE else 4
    return -(-depth // quantum) * quantum


def pack_rows(rows: np.ndarray, layout: str) -> np.ndarray:
    """Weights [N, K] as a flat array of N zero-padded rows of `padded_length(K, layout)` elements."""
    count, depth = rows.shape
    padded = np.zeros((count, padded_length(depth, layout)), np.int16 if layout == "int16" else np.int8)
    padded[:, :depth] = rows
    return padded.reshape(-1)


def column_slot(k, layout: str):
    """Where the k-th element of the reduction goes in an int16 input column (k an int or a TIR
    index): in order for int16 weights; for int8 weights each group of four as (0, 2, 1, 3), the
    lanes that SXTB16 and SXTB16 ROR #8 take from one word of weights."""
    if layout != "int8":
        return k
    return (k & ~3) | ((k & 1) << 1) | ((k >> 1) & 1)


def interleave_pairs(rows: np.ndarray) -> np.ndarray:
    """Padded rows [N, K] (`pack_rows`, int16 layout) as a flat array where each pair of rows is
    interleaved two elements at a time (r0[0:2], r1[0:2], r0[2:4], r1[2:4], ...); an odd last row
    follows as it is."""
    count, length = rows.shape
    pairs = rows[:count // 2 * 2].reshape(-1, 2, length // 2, 2).swapaxes(1, 2)
    return np.concatenate([pairs.reshape(-1), rows[count // 2 * 2:].reshape(-1)])


def paired_slot(pixel, k):
    """Where element k (an int or a TIR index) of pixel 0 or 1 goes in a pixel pair's int16
    columns interleaved as `interleave_pairs` lays out rows."""
    return k // 2 * 4 + pixel * 2 + k % 2
