"""The exact onnxruntime static quantization settings (the int8 compiler relies on them)."""
from __future__ import annotations

from typing import Any

from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

from edgeprune.quantize.errors import QuantizeError

METHODS: dict[str, CalibrationMethod] = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
}

# Options of onnxruntime's calibrators. quantize_static would build the entropy calibrator with
# 128 histogram bins for 128 quantized bins, which leaves the full range as the only candidate
# threshold (the same ranges as MinMax); edgeprune calibrates itself with a finer histogram and
# passes the ranges to quantize_static as its calibration cache. The others are its defaults.
CALIBRATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "minmax": {"symmetric": False},
    "percentile": {"symmetric": True, "num_bins": 2048, "percentile": 99.999},
    "entropy": {"symmetric": False, "num_bins": 2048, "num_quantized_bins": 128},
}

# QDQ format; int8 activations (asymmetric, zero point from calibration); int8 weights, symmetric
# per output channel (zero point 0); bias int32 with scale s_x * s_w[k] (onnxruntime's default).
EXTRA_OPTIONS = {"WeightSymmetric": True, "ActivationSymmetric": False}


# The operators quantize_static wraps in QDQ: its default set (its QLinear and QDQ registries) and
# the activations the int8 compiler computes as tables (compile/int8_table.py), which onnxruntime
# would otherwise leave in float between their neighbours' DequantizeLinear and QuantizeLinear.
TABLE_ACTIVATIONS = ("Elu", "HardSigmoid", "HardSwish", "PRelu", "Tanh")


def _op_types_to_quantize() -> list[str]:
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return sorted({*QLinearOpsRegistry, *QDQRegistry, *TABLE_ACTIVATIONS})


def quantizer_kwargs(method: str) -> dict[str, Any]:
    """Keyword arguments of `onnxruntime.quantization.quantize_static` for `method`."""
    if method not in METHODS:
        raise QuantizeError(f"unknown calibration method {method!r}; use one of "
                            f"{', '.join(METHODS)}")
    return {
        "quant_format": QuantFormat.QDQ,
        "op_types_to_quantize": _op_types_to_quantize(),
        "activation_type": QuantType.QInt8,
        "weight_type": QuantType.QInt8,
        "per_channel": True,
        "calibrate_method": METHODS[method],
        "extra_options": dict(EXTRA_OPTIONS),
        "calibration_providers": ["CPUExecutionProvider"],
    }


def describe(method: str) -> dict[str, Any]:
    """The settings as plain values, for reports."""
    plain = {key: value.name if hasattr(value, "name") else value
             for key, value in quantizer_kwargs(method).items()}
    return {**plain, "calibrator_options": CALIBRATOR_OPTIONS[method]}
