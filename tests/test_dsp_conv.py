"""The DSP convolution's compile-time side (compile/dsp/conv.py), on the host: its constants
table (dense.constants with one tile of all output channels) and the doubled int16 weights that
the short requantize takes (int8 ones, and the M55's MVE layout, stay as they are). The kernels
themselves run on QEMU in test_int8_kernels.py."""
import numpy as np
import pytest

from edgeprune.compile.conv_shape import ConvShape
from edgeprune.compile.dsp import conv, dense, depthwise, packing
from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.requantize import quantize_multiplier


def _layer(channels: int, depth: int):
    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 128, (channels, depth, 1, 1)).astype(np.int8)
    bias = rng.integers(-20000, 20000, channels)
    multiplier, shift = quantize_multiplier(rng.uniform(1e-4, 0.45, channels))
    return weight, bias, multiplier, shift


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_the_table_holds_each_field_for_every_channel_side_by_side(rounding):
    channels = 11  # odd: the kernel's one-channel tail reads the same table
    weight, bias, multiplier, shift = _layer(channels, 20)
    requantize = Requantize(-128, -128, 127, rounding=rounding, negative_shifts=True)
    fast, table = dense.constants(weight.reshape(channels, -1), bias, multiplier, shift, requantize, tile=channels)
    assert fast == (rounding == "double")
    fields = table.reshape(4, channels)
    assert np.array_equal(fields[0], 2 * bias if fast else bias)
    assert np.array_equal(fields[1], multiplier)
    assert np.array_equal(fields[3], -shift if fast else shift)


@pytest.mark.parametrize("layout", [*packing.LAYOUTS, packing.MVE])
def test_the_short_requantize_doubles_int16_weights_and_leaves_int8_ones(layout):
    """int8 weights keep their byte: the DSP kernel doubles the column, the MVE one the sum (QADD)."""
    weight = _layer(4, 6)[0]
    plain = packing.pack_rows(weight.reshape(4, -1), layout)
    assert np.array_equal(conv.pack_weights(weight, layout, fast=False), plain)
    doubled = conv.pack_weights(weight, layout, fast=True)
    assert doubled.dtype == plain.dtype
    assert np.array_equal(doubled, 2 * plain if layout == "int16" else plain)


def test_pairs_of_weights_and_columns_give_each_channel_and_pixel_its_own_sum():
    """The interleaved layouts as gemm.Gemm.tile reads them: word h of item j holds channel h's (or
    pixel h's) elements 2j and 2j + 1; an odd last channel keeps its plain row."""
    channels, depth = 5, 20
    weight = _layer(channels, depth)[0]
    padded = packing.padded_length(depth)
    packed = conv.pack_weights(weight, "int16", fast=False, pairs=True).astype(np.int64)
    rng = np.random.default_rng(1)
    pixels = rng.integers(-128, 128, (2, depth))
    column = np.zeros(2 * padded, np.int64)
    for p in range(2):
        for k in range(depth):
            column[packing.paired_slot(p, k)] = pixels[p, k]
    expected = weight.reshape(channels, -1).astype(np.int64) @ pixels.T
    for c0 in range(0, channels - 1, 2):
        pair = packed[c0 * padded:(c0 + 2) * padded].reshape(-1, 2, 2)  # [item, channel, element]
        sums = np.einsum("jce,jpe->cp", pair, column.reshape(-1, 2, 2))
        assert np.array_equal(sums, expected[c0:c0 + 2])
    last = packed[(channels - 1) * padded:]
    assert np.array_equal(last[:depth], weight[-1].reshape(-1)) and not last[depth:].any()
    assert np.array_equal(conv.pack_weights(weight, "int16", fast=False, pairs=False),
                          packing.pack_rows(weight.reshape(channels, -1), "int16"))


@pytest.mark.parametrize("rows", [1, 2, 3, 4])
def test_depthwise_rows_keep_their_outer_weights_in_a_word_and_share_middle_ones(rows):
    """As the 3-wide depthwise kernel reads them: row r's (w0, w2) in word r, then w1 of rows 2j
    and 2j + 1 in the low and high lanes of word rows + j."""
    channels = 5
    weight = np.random.default_rng(2).integers(-128, 128, (channels, 1, rows, 3)).astype(np.int8)
    shape = ConvShape(channels, 6, 6, channels, (rows, 3), (1, 1), (0, 1, 0, 1), (1, 1))
    assert depthwise.by_rows(shape)
    words = depthwise.pack_weights(weight, shape).reshape(channels, -1, 2)  # [channel, word, lane]
    assert words.shape[1] == rows + (rows + 1) // 2
    for r in range(rows):
        assert np.array_equal(words[:, r], weight[:, 0, r, ::2])
        assert np.array_equal(words[:, rows + r // 2, r % 2], weight[:, 0, r, 1])
    if rows % 2:
        assert not words[:, -1, 1].any()
