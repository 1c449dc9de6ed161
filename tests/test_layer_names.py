"""Layers are named after the source model's nodes (issue 17, item 11): the ONNX node names (an
unnamed node by its index), in the manifest, `edgeprune run`'s table and the profile record."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgeprune
from edgeprune.cli import main
from edgeprune.compile.api import step_label
from tests.onnx_op_models import int8_model


def _two_convs() -> onnx.ModelProto:
    """stem (Conv) -> stem_act (Relu) -> an unnamed Conv (#2) -> pool (GlobalAveragePool)."""
    rng = np.random.default_rng(3)
    weights = {"w1": rng.normal(0, 0.3, (6, 3, 3, 3)), "b1": rng.normal(0, 0.1, 6), "w2": rng.normal(0, 0.3, (4, 6, 1, 1))}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"], name="stem_act"),
             helper.make_node("Conv", ["r", "w2"], ["c"]),
             helper.make_node("GlobalAveragePool", ["c"], ["y"], name="pool")]
    graph = helper.make_graph(nodes, "named", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])],
                              [numpy_helper.from_array(v.astype(np.float32), n) for n, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.qemu
def test_float_layers_carry_the_onnx_node_names_in_manifest_and_run(tmp_path, capsys):
    model = _two_convs()
    compiled = edgeprune.compile(model, "mps2-an386", tmp_path / "named")
    assert [s["source"] for s in compiled.manifest["steps"]] == [
        "stem (Conv), stem_act (Relu)", "#2 (Conv)", "pool (GlobalAveragePool)"]
    labels = [step_label(s) for s in compiled.manifest["steps"]]
    assert labels[0].startswith("stem (Conv), stem_act (Relu): ") and labels[0].endswith(" -> 1x6x8x8")
    assert [n.name for n in model.graph.node] == ["stem", "stem_act", "", "pool"]  # the caller's model is kept
    assert main(["run", str(compiled.path)]) == 0
    printed = capsys.readouterr().out
    assert all(label in printed for label in labels)


def test_int8_kernel_is_named_after_the_node_its_quantize_closes(tmp_path):
    compiled = edgeprune.compile(int8_model("Conv"), "mps2-an386", tmp_path / "int8")
    (step,) = compiled.manifest["steps"]
    assert step["source"] == "#4 (Conv)"  # the QDQ file's fifth node: the edges' QDQ pairs are taken off later
    assert step_label(step) == "#4 (Conv): conv 3x3 s1 4->8 @6x6"
