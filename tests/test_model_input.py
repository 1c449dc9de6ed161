"""Models as users export them (issue 17, items 5, 7, 8, 9): float64 tensors, broken files,
symbolic batch dimensions and old opsets get a clear answer, never a traceback."""
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import edgeprune
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


def _broken_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Broken model files and the one-line error each must give."""
    whole = _matmul(folder / "whole.onnx").read_bytes()
    model = onnx.load_from_string(whole)
    del model.opset_import[:]
    prefix = model.SerializeToString()  # fields serialize in number order: opset_import (8) comes last here
    assert whole.startswith(prefix) and len(prefix) < len(whole)
    cases = {
        "empty": (b"", "the file is empty (0 bytes), not an ONNX model"),
        "not onnx": (b"hello, not a model\n", "not an ONNX model, or a truncated one (19 bytes that do not parse "
                                              "as an ONNX protobuf)"),
        "cut mid-field": (whole[:len(whole) // 2], "not an ONNX model, or a truncated one"),
        "cut at a field": (prefix,  # cut before opset_import: it still parses
                           "not a valid ONNX model, perhaps truncated (model with IR version >= 3 must specify "
                           "opset_import for ONNX)"),
    }
    files = {}
    for name, (data, message) in cases.items():
        path = folder / f"{name.replace(' ', '_')}.onnx"
        path.write_bytes(data)
        files[name] = (path, f"edgeprune compile: error: {path}: {message}")
    return files


@pytest.mark.parametrize("case", ["empty", "not onnx", "cut mid-field", "cut at a field"])
def test_broken_file_is_one_line_exit_2_and_the_output_is_untouched(case, tmp_path, capsys):
    path, expected = _broken_files(tmp_path)[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier compile")
    assert main(["compile", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(expected)
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "earlier compile"


class _ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.mark.qemu
def test_symbolic_batch_is_bound_to_1_said_in_summary_and_manifest(tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "dynamic.onnx"
    torch.onnx.export(_ConvNet().eval(), (torch.randn(2, 1, 8, 8),), path, input_names=["x"],
                      dynamic_axes={"x": {0: "N"}})
    assert onnx.load(path).graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    out = tmp_path / "out"
    assert main(["compile", str(path), "-o", str(out)]) == 0
    assert "  note      input 'x' axis 0: symbolic 'N' bound to 1\n" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["notes"] == ["input 'x' axis 0: symbolic 'N' bound to 1"]
    assert manifest["inputs"][0]["shape"] == [1, 1, 8, 8]
    assert edgeprune.run(out).relative_error < 1e-4


def _relu_nchw(path: Path, dims: list) -> Path:
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_symbolic_non_batch_axis_is_an_error_naming_it(tmp_path):
    path = _relu_nchw(tmp_path / "hw.onnx", ["N", 1, "H", 8])
    with pytest.raises(UnsupportedModelError, match=r"^input 'x' axis 2 is symbolic \('H'\) and is not the batch "
                                                    r"axis; give its size with --input-shape"):
        compile_model(path, "mps2-an386", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_input_shape_binds_every_symbolic_axis_and_must_fit_the_fixed_ones(tmp_path):
    path = _relu_nchw(tmp_path / "hw.onnx", ["N", 1, "H", 8])
    model = compile_model(path, "mps2-an386", tmp_path / "out", input_shape=(1, 1, 6, 8))
    assert model.manifest["inputs"][0]["shape"] == [1, 1, 6, 8] and model.manifest["outputs"][0]["shape"] == [1, 1, 6, 8]
    assert model.manifest["notes"] == ["input 'x' axis 0: symbolic 'N' bound to 1",
                                       "input 'x' axis 2: symbolic 'H' bound to 6"]
    with pytest.raises(UnsupportedModelError, match=r"input shape \(1, 3, 6, 8\) does not fit input 'x' of shape "
                                                    r"\('N', 1, 'H', 8\)"):
        compile_model(path, "mps2-an386", tmp_path / "bad", input_shape=(1, 3, 6, 8))


def _opset6_model(path: Path) -> Path:
    """BatchNormalization-6, AveragePool-1, GlobalAveragePool, Flatten, Gemm-6 (IR version 3: the
    weights are graph inputs too), as old exporters wrote them."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
               for name, shape in (("scale", (4,)), ("bias", (4,)), ("mean", (4,)), ("gemm_w", (3, 4)), ("gemm_b", (3,)))]
    weights.append(numpy_helper.from_array((rng.random(4) + 0.5).astype(np.float32), "var"))
    nodes = [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["bn"], name="bn"),
             helper.make_node("AveragePool", ["bn"], ["pool"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("GlobalAveragePool", ["pool"], ["gap"], name="gap"),
             helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
             helper.make_node("Gemm", ["flat", "gemm_w", "gemm_b"], ["y"], transB=1, name="gemm")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])] + [
        helper.make_tensor_value_info(w.name, TensorProto.FLOAT, list(w.dims)) for w in weights]
    graph = helper.make_graph(nodes, "old", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)], ir_version=3), path)
    return path


@pytest.mark.qemu
def test_old_opset_is_upgraded_said_so_and_the_reference_runs_the_same_model(tmp_path, capsys):
    path, out = _opset6_model(tmp_path / "old.onnx"), tmp_path / "out"
    assert main(["compile", str(path), "-o", str(out)]) == 0
    note = "ONNX opset 6 upgraded to 13 with onnx's version converter (onnxruntime runs opset 7 and later)"
    assert f"  note      {note}\n" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["notes"] == [note]
    compiled = onnx.load(out / "model.onnx")
    assert [(o.domain, o.version) for o in compiled.opset_import] == [("", 13)]
    assert [n.op_type for n in compiled.graph.node] == [n.op_type for n in onnx.load(path).graph.node]
    assert main(["run", str(out)]) == 0
    assert "(ok, tolerance" in capsys.readouterr().out
