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
    upgraded = _convert(model, f"the model is ONNX opset {old}, which onnxruntime does not run")
    return upgraded, [f"ONNX opset {old} upgraded to {UPGRADE_TO} with onnx's version converter "
                      f"(onnxruntime runs opset {OLDEST_RUNNABLE} and later)"]


def replace_upsample(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A model with Upsample (opsets 7 to 9; TVM's importer reads its scales from the attribute of
    opset 7 only) at opset UPGRADE_TO, where each Upsample is a Resize with Upsample's coordinates
    (asymmetric; nearest rounds down): onnx's converter leaves them half-pixel, another result."""
    upsampled = {n.output[0] for n in model.graph.node if n.op_type == "Upsample" and n.domain in ("", "ai.onnx")}
    if not upsampled:
        return model, []
    old = default_opset(model)
    upgraded = _convert(model, f"the model has Upsample, which TVM imports wrongly at opset {old}")
    for node in upgraded.graph.node:
        if node.op_type == "Resize" and node.output[0] in upsampled:
            kept = [a for a in node.attribute if a.name not in ("coordinate_transformation_mode", "nearest_mode")]
            del node.attribute[:]
            node.attribute.extend([*kept, onnx.helper.make_attribute("coordinate_transformation_mode", "asymmetric"),
                                   onnx.helper.make_attribute("nearest_mode", "floor")])
    return upgraded, [f"Upsample (deprecated) replaced by Resize: ONNX opset {old} upgraded to {UPGRADE_TO}"]


def _convert(model: onnx.ModelProto, why: str) -> onnx.ModelProto:
    """`model` at opset UPGRADE_TO; UnsupportedModelError saying `why` it was converted if it cannot be."""
    try:
        return version_converter.convert_version(model, UPGRADE_TO)
    except RuntimeError as exc:  # pybind11's translation of the converter's C++ errors
        raise UnsupportedModelError(f"{why}, and onnx's version converter cannot upgrade it to opset {UPGRADE_TO}: "
                                    f"{str(exc).strip().splitlines()[0]}") from None
