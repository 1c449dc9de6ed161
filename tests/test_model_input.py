"""Models as users export them (issue 17, items 5, 7, 8, 9): float64 tensors, broken files,
symbolic batch dimensions and old opsets get a clear answer, never a traceback."""
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeprune.cli import main
from edgeprune.compile.api import compile_model
from edgeprune.errors import UnsupportedModelError


def _matmul(path: Path, dtype: int = TensorProto.FLOAT, batch: int | str = 1, opset: int = 17) -> Path:
    """x (batch, 4) @ w (4, 3) -> y, in `dtype`."""
    w = numpy_helper.from_array(np.ones((4, 3), helper.tensor_dtype_to_np_dtype(dtype)), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", dtype, [batch, 4])],
                              [helper.make_tensor_value_info("y", dtype, [batch, 3])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def test_float64_model_is_refused_naming_the_tensor(tmp_path, capsys):
    model = _matmul(tmp_path / "f64.onnx", TensorProto.DOUBLE)
    assert main(["compile", str(model), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("edgeprune compile: error: tensor 'x' (input) is float64; edgeprune compiles float32 models "
                   "(and int8 QDQ ones): export the model in float32 (in torch: model.float() and a float32 "
                   "example input)")
    assert not (tmp_path / "out").exists()


def test_float64_inside_a_float32_model_names_the_cast(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("Cast", ["r"], ["wide"], to=TensorProto.DOUBLE, name="widen"),
         helper.make_node("Cast", ["wide"], ["y"], to=TensorProto.FLOAT, name="narrow")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "cast.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(UnsupportedModelError, match=r"^tensor 'wide' \(cast by node 'widen'\) is float64;"):
        compile_model(path, "mps2-an386", tmp_path / "out")
