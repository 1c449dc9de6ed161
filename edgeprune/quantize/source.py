"""The float model to quantize as an ONNX file: exported (zoo, torch module) or given."""
from __future__ import annotations

import os
from pathlib import Path

import onnx
from torch import nn

from edgeprune.models import zoo
from edgeprune.models.export import to_onnx
from edgeprune.models.train import Recipe, train
from edgeprune.quantize import datasets
from edgeprune.quantize.errors import QuantizeError

ModelSpec = str | os.PathLike | nn.Module


def float_onnx(model: ModelSpec, input_shape: tuple[int, ...] | None, scratch: Path,
               train_epochs: int = 0, train_data: datasets.DataSpec = "digits") -> tuple[Path, str]:
    """(ONNX path, label) of `model`: zoo name (trained `train_epochs` on `train_data` first),
    `.onnx` file, or torch module with `input_shape`."""
    path = scratch / "exported.onnx"
    if isinstance(model, nn.Module):
        if input_shape is None:
            raise QuantizeError("pass input_shape with a torch module")
        return to_onnx(model, tuple(input_shape), path), type(model).__name__
    name = str(model)
    if name in zoo.ZOO:
        net, shape = zoo.build_model(name), zoo.input_shape(name)
        if train_epochs > 0:
            if not isinstance(train_data, (str, os.PathLike)):
                raise QuantizeError("training a zoo model needs labelled data: 'digits' or an .npz")
            ds = datasets.load(train_data, shape, zoo.num_outputs(name))
            train(net, ds.x_train, ds.y_train, Recipe(epochs=train_epochs))
        return to_onnx(net, shape, path), name
    if Path(name).suffix != ".onnx" or not Path(name).is_file():
        raise QuantizeError(f"{name!r} is neither a zoo model ({', '.join(zoo.model_names())}) "
                            "nor an existing .onnx file")
    return Path(name), name


def model_input(model: onnx.ModelProto) -> tuple[str, tuple[int, ...]]:
    """Name and shape of the single float input (a symbolic batch dimension counts as 1);
    raises QuantizeError for models this stage cannot quantize."""
    quantized = sorted({n.op_type for n in model.graph.node
                        if n.op_type in ("QuantizeLinear", "DequantizeLinear")})
    if quantized:
        raise QuantizeError(f"the model is already quantized (it has {', '.join(quantized)}); "
                            "give the float model")
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise QuantizeError(f"the model has {len(inputs)} inputs; edgeprune quantizes "
                            "single-input models")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type != onnx.TensorProto.FLOAT:
        raise QuantizeError(f"input {inputs[0].name!r} is "
                            f"{onnx.TensorProto.DataType.Name(tensor.elem_type)}, not FLOAT")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if any(d is None for d in dims[1:]):
        raise QuantizeError(f"input {inputs[0].name!r} has a dynamic shape {dims}; "
                            "export it with a fixed shape")
    return inputs[0].name, (1, *dims[1:])


def output_width(model: onnx.ModelProto) -> int | None:
    """Columns of the first output if it is (batch, C), else None."""
    dims = model.graph.output[0].type.tensor_type.shape.dim
    return dims[1].dim_value if len(dims) == 2 and dims[1].HasField("dim_value") else None
