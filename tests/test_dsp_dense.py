"""The DSP dense kernel's compile-time side (compile/dsp/dense.py), on the host: the weight and
constant layouts by tile, and the short requantize that `constants` allows, against TFLM's double
rounding (requantize.multiply_by_quantized_multiplier) on every sum near zero (where the rounding
ties are) and on random sums up to the layer's bound. The kernels themselves run on QEMU in
test_int8_kernels.py."""
import numpy as np
import pytest

from edgeprune.compile.dsp import dense
from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.requantize import multiply_by_quantized_multiplier, quantize_multiplier


def _layer(outputs: int, depth: int, reals: np.ndarray, seed: int = 0):
    rng = np.random.default_rng(seed)
    weight = rng.integers(-127, 128, (outputs, depth))
    bias = rng.integers(-20000, 20000, outputs)
    multiplier, shift = quantize_multiplier(reals)
    return weight, bias, multiplier, shift


def _unpack(table: np.ndarray, outputs: int) -> np.ndarray:
    """The (outputs, 4) per-output fields back from the tile layout."""
    whole = outputs // dense.ROWS * dense.ROWS
    tiles = table[:whole * 4].reshape(-1, 4, dense.ROWS).swapaxes(1, 2).reshape(whole, 4)
    return np.concatenate([tiles, table[whole * 4:].reshape(-1, 4)])


def _short_requantize(acc: np.ndarray, fields: np.ndarray, low: int, high: int) -> np.ndarray:
    """What the kernel computes from the fast fields (bias 2b, multiplier, offset, right), in
    Python integers: the column is doubled, so the sum is 2 * acc; SMMLAR, sign correction, shift."""
    _, m, offset, right = (int(v) for v in fields)
    out = [(((2 * a * m + (offset << 32) + (1 << 31)) >> 32) - (a < 0)) >> right for a in (int(a) for a in acc)]
    return np.clip(np.array(out, np.int64), low, high)


@pytest.mark.parametrize("zero_point, relu", [(-128, True), (5, False), (127, False), (-3, True)])
def test_the_short_requantize_equals_tflm_double_rounding(zero_point, relu):
    outputs, depth = 9, 40
    reals = np.array([0.3, 0.011, 0.49, 0.0007, 0.26, 0.125 * 1.0001, 0.0625 * 0.9999, 0.2, 1e-6])
    weight, bias, multiplier, shift = _layer(outputs, depth, reals)
    low = zero_point if relu else -128
    requantize = Requantize(zero_point, low, 127, negative_shifts=True)
    fast, table = dense.constants(weight, bias, multiplier, shift, requantize)
    assert fast and table.dtype == np.int32 and table.size == outputs * 4
    fields = _unpack(table, outputs)
    bound = int(np.max(np.abs(bias) + 128 * np.abs(weight).sum(axis=1)))
    rng = np.random.default_rng(1)
    for n in range(outputs):
        acc = np.concatenate([np.arange(-4096, 4097), rng.integers(-bound, bound + 1, 4000), [-bound, bound]])
        reference = np.clip(zero_point + multiply_by_quantized_multiplier(acc, multiplier[n], shift[n]), low, 127)
        assert fields[n, 0] == 2 * bias[n]
        assert np.array_equal(_short_requantize(acc, fields[n], low, 127), reference), f"output {n}"


@pytest.mark.parametrize("case", ["left shift", "multiplier 2**30", "single rounding", "huge bias"])
def test_constants_keep_the_generic_requantize_where_the_short_one_is_not_proven(case):
    reals = np.array({"left shift": [0.3, 1.5], "multiplier 2**30": [0.3, 0.25]}.get(case, [0.3, 0.2]))
    weight, bias, multiplier, shift = _layer(2, 16, reals)
    if case == "huge bias":
        bias = np.array([1 << 30, 0])
    requantize = Requantize(0, -128, 127, rounding="single" if case == "single rounding" else "double")
    fast, table = dense.constants(weight, bias, multiplier, shift, requantize)
    assert not fast
    assert np.array_equal(_unpack(table, 2), np.stack([bias, multiplier, [0, 0], shift], axis=1))


@pytest.mark.parametrize("layout", ["int8", "int16"])
def test_weights_are_laid_out_by_tile_group_by_group(layout):
    outputs, depth = 9, 10  # two tiles of four, one output alone; rows padded to 12
    weight = np.random.default_rng(2).integers(-127, 128, (outputs, depth))
    packed = dense.pack_weights(weight, layout)
    assert packed.dtype == (np.int16 if layout == "int16" else np.int8) and packed.size == outputs * 12
    for n in range(outputs):
        for k in range(12):
            if n < 8:
                index = ((n // 4 * 3 + k // 4) * 4 + n % 4) * 4 + k % 4
            else:
                index = 8 * 12 + (n - 8) * 12 + k
            assert packed[index] == (weight[n, k] if k < depth else 0)
