"""Model in: an ONNX file, a zoo name or a torch module becomes a checked ONNX graph, then Relax."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.message import DecodeError

from edgeprune.compile.dtypes import check_dtypes
from edgeprune.compile.opset import replace_upsample, upgrade_opset
from edgeprune.compile.sources import named_nodes
from edgeprune.compile.symbolic import bind_symbolic_dims
from edgeprune.errors import EdgepruneError, ModelFileError, UnsupportedOpError

# ONNX operators -> how a QDQ int8 region of each is lowered ("" if it computes in float32 only).
# tests/test_onnx_ops.py compiles one model per operator (and per int8 entry its QDQ twin) for the M4
# and compares it with onnxruntime on QEMU; op_tables puts this table in the README.
_SAME = "same scale and zero point"
_TABLE = "256-entry table"
SUPPORTED_OPS: dict[str, str] = {
    "Add": "integer kernel (equal shapes)", "AveragePool": "integer kernel (no padding, or counting it)",
    "BatchNormalization": "", "Clip": "", "Concat": "integer kernel",
    "Constant": "", "Conv": "integer kernel (symmetric weights)", "ConvTranspose": "",
    "DequantizeLinear": "the int8 output edge", "Div": "", "Elu": _TABLE, "Flatten": _SAME,
    "Gemm": "integer kernel (symmetric weights)", "GlobalAveragePool": "integer kernel", "GlobalMaxPool": _SAME,
    "HardSigmoid": _TABLE, "HardSwish": _TABLE, "Identity": "", "LeakyRelu": _TABLE, "MatMul": "",
    "MaxPool": _SAME, "Mul": "integer kernel (broadcasting)", "Pad": _SAME + " (constant quantized)", "PRelu": _TABLE + " per channel",
    "QuantizeLinear": "the int8 input edge", "ReduceMax": _SAME, "ReduceMean": "integer kernel", "Relu": _SAME,
    "Reshape": _SAME, "Resize": _SAME + " (nearest; linear: float32 only)", "Sigmoid": _TABLE, "Softmax": "",
    "Split": "", "Squeeze": _SAME, "Sub": "integer kernel (broadcasting)", "Tanh": _TABLE, "Transpose": _SAME, "Unsqueeze": _SAME,
    "Upsample": "",
}


def check_supported_ops(model: onnx.ModelProto) -> None:
    """Raise UnsupportedOpError naming the first node whose operator cannot be compiled."""
    for index, node in enumerate(model.graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_OPS:
            name = node.name or f"#{index}"
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            raise UnsupportedOpError(
                f"operator {op} (node {name!r}) is not supported; supported operators: "
                f"{', '.join(sorted(SUPPORTED_OPS))}"
            )


def read_onnx(path: Path) -> onnx.ModelProto:
    """The ONNX model in the file `path`; ModelFileError (one line naming the file) if it is missing,
    empty, truncated or not ONNX."""
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise ModelFileError(f"{path}: the file is empty (0 bytes), not an ONNX model")
    try:
        model = onnx.load(path)
    except DecodeError:
        raise ModelFileError(f"{path}: not an ONNX model, or a truncated one ({size:,} bytes that do not "
                             "parse as an ONNX protobuf)") from None
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ModelFileError(f"{path}: not a valid ONNX model, perhaps truncated ({reason})") from None
    return model


def load_onnx(model: Any, input_shape: tuple[int, ...] | None = None) -> onnx.ModelProto:
    """An ONNX model from a path, a loaded ModelProto, a zoo model name or a torch nn.Module."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (str, Path)) and Path(model).suffix == ".onnx":
        return read_onnx(Path(model))
    from edgeprune.models import export, zoo

    if isinstance(model, str):
        module, input_shape = zoo.build_model(model), zoo.input_shape(model)
    else:
        module = model
        if input_shape is None:
            raise EdgepruneError("a torch module needs an input shape (input_shape=(1, C, H, W))")
    with tempfile.TemporaryDirectory() as scratch:
        return onnx.load(export.to_onnx(module, tuple(input_shape), Path(scratch) / "model.onnx"))


def load_for_compile(model: Any, input_shape: tuple[int, ...] | None = None) -> tuple[onnx.ModelProto, list[str]]:
    """The ONNX model to compile, and what was changed to compile it: an opset older than onnxruntime
    runs upgraded, Upsample replaced by Resize, symbolic input axes bound (see `symbolic`); unnamed
    nodes are named by their index in the file (`#4`), as layers are named after nodes."""
    onnx_model, upgraded = upgrade_opset(named_nodes(load_onnx(model, input_shape)))
    onnx_model, replaced = replace_upsample(onnx_model)
    onnx_model, bound = bind_symbolic_dims(onnx_model, input_shape)
    return onnx_model, upgraded + replaced + bound


def to_relax(model: onnx.ModelProto):
    """Import a checked ONNX graph into a Relax IRModule with the weights as constants, each node's
    value named after it (`sources`)."""
    from edgeprune.compile.sources import onnx_to_relax

    check_dtypes(model)
    check_supported_ops(model)
    return onnx_to_relax(model)
