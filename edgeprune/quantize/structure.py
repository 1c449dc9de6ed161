"""Which nodes of a QDQ graph still compute in float (an input not dequantized or an output not
quantized): the ones an integer-only compiler cannot lower."""
from __future__ import annotations

import onnx

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def float_nodes(model: onnx.ModelProto) -> list[str]:
    """"<op> <name>" of every compute node with a float activation input or output."""
    constants = {t.name for t in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in model.graph.output}
    found = []
    for node in model.graph.node:
        if node.op_type in QDQ_OPS:
            continue
        inputs = [i for i in node.input if i and i not in constants]
        float_in = any(i not in producers or producers[i].op_type != "DequantizeLinear"
                       for i in inputs)
        float_out = any(o in graph_outputs or any(c.op_type != "QuantizeLinear"
                                                  for c in consumers.get(o, []))
                        for o in node.output)
        if float_in or float_out:
            found.append(f"{node.op_type} {node.name}")
    return found
