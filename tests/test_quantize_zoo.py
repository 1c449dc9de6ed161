"""The MLPerf Tiny architectures (untrained) quantize fully: residual adds, depthwise, dense."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgeprune.quantize import quantize


@pytest.mark.slow  # four models quantized and evaluated
def test_mlperf_tiny_models_quantize_without_float_islands(tmp_path):
    ops = {}
    for name in ("ic_resnet8", "kws_dscnn", "vww_mobilenet", "ad_autoencoder"):
        report = quantize(name, "digits", tmp_path / f"{name}.int8.onnx", samples=16,
                          eval_samples=16)
        model = onnx.load(report.output)
        assert report.float_nodes == [], name
        assert report.agreement >= 0.9, name
        assert min(r.sqnr_db for r in report.tensors) > 20, name
        values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        producers = {out: n for n in model.graph.node for out in n.output}
        for node in (n for n in model.graph.node if n.op_type in ("Conv", "Gemm")):
            weight = producers[node.input[1]]
            q_w, s_w = values[weight.input[0]], values[weight.input[1]]
            assert q_w.dtype == np.int8 and s_w.shape == (q_w.shape[0],), node.name
            assert q_w.min() >= -127, f"{node.name}: a -128 weight (TFLite's int8 weights are in [-127, 127])"
            assert values[producers[node.input[2]].input[0]].dtype == np.int32, node.name
        ops[name] = model.graph.node
        scores = {"ic_resnet8": True, "vww_mobilenet": True}.get(name, False)  # digits labels
        assert (report.float_accuracy is not None) == scores, name
    adds = [n for n in ops["ic_resnet8"] if n.op_type == "Add"]
    assert len(adds) == 3
    assert all(len(n.input) == 2 for n in adds)
    for name in ("kws_dscnn", "vww_mobilenet"):
        groups = [a.i for n in ops[name] if n.op_type == "Conv" for a in n.attribute
                  if a.name == "group" and a.i > 1]
        assert len(groups) >= 4, name
    assert sum(n.op_type == "Gemm" for n in ops["ad_autoencoder"]) == 10
    assert all(n.op_type != "ReduceMean" for graph in ops.values() for n in graph)
