"""Old ONNX opsets upgraded at load time with onnx's version converter: onnxruntime, the reference
every compiled model is checked against, runs no operator older than opset 7 (BatchNormalization-6,
Gemm-6, AveragePool-1), so the compiled graph and the reference would otherwise differ."""
from __future__ import annotations

import onnx
from onnx import version_converter

from edgeprune.errors import UnsupportedModelError

OLDEST_RUNNABLE = 7  # the oldest default-domain opset onnxruntime implements
UPGRADE_TO = 13      # the opset an older model is converted to


def default_opset(model: onnx.ModelProto) -> int:
    """The model's version of the default ONNX operator set."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def upgrade_opset(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """The model at opset UPGRADE_TO if it was older than OLDEST_RUNNABLE, with a sentence saying so."""
    old = default_opset(model)
    if old >= OLDEST_RUNNABLE:
        return model, []
    try:
        upgraded = version_converter.convert_version(model, UPGRADE_TO)
    except RuntimeError as exc:  # pybind11's translation of the converter's C++ errors
        raise UnsupportedModelError(f"the model is ONNX opset {old}, which onnxruntime does not run, and onnx's "
                                    f"version converter cannot upgrade it to opset {UPGRADE_TO}: "
                                    f"{str(exc).strip().splitlines()[0]}") from None
    return upgraded, [f"ONNX opset {old} upgraded to {UPGRADE_TO} with onnx's version converter "
                      f"(onnxruntime runs opset {OLDEST_RUNNABLE} and later)"]
