"""Which operators of the source model each kernel computes, so that layers are named after the
model's nodes (an ONNX node's name, a TFLite operator's index and type), not after kernels.

The front ends bind each operator's value to a Relax variable named `ep_src<k>_`, k its entry in
the module attribute `edgeprune.source_labels`. Names survive the graph passes up to FuseOps,
which gives each group and its call site fresh variables; `fuse_ops` runs FuseOps and follows
the dataflow of each group back to the bindings before fusion, then stores, per kernel call of
`main` in order, the kernel's name and the labels of the operators it computes as
`edgeprune.step_sources`. The plan reads them (`plan.Step.source`)."""
from __future__ import annotations

import re

import onnx
import tvm
from tvm import relax

LABELS = "edgeprune.source_labels"
STEPS = "edgeprune.step_sources"
ALIASES = "edgeprune.source_aliases"
_NAME = re.compile(r"^ep_src(\d+)_\d*$")  # Relax numbers repeated names: ep_src3_, ep_src3_1, ...


def var_name(label: int) -> str:
    """The Relax variable name that marks a value as computed by source operator `label`."""
    return f"ep_src{label}_"


def named_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with every node named: an unnamed node becomes `#<its index>` (a copy; `model` stays)."""
    if all(node.name for node in model.graph.node):
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for index, node in enumerate(model.graph.node):
        node.name = node.name or f"#{index}"
    return model


def onnx_labels(model: onnx.ModelProto) -> dict[str, str]:
    """Node name -> label of every ONNX node (all named) that names a layer: `name (OpType)`. A
    QuantizeLinear takes the label of the node whose output it quantizes (the int8 kernel computes
    that node); DequantizeLinear nodes name nothing."""
    producer = {out: node for node in model.graph.node for out in node.output}
    labels = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear":
            continue
        source = producer.get(node.input[0]) if node.op_type == "QuantizeLinear" else node
        if source is not None and source.op_type != "DequantizeLinear":
            labels[node.name] = f"{source.name} ({source.op_type})"
    return labels


def onnx_to_relax(model: onnx.ModelProto) -> tvm.IRModule:
    """TVM's ONNX import (weights as constants) with each node's value named after its label."""
    from tvm.relax.frontend.onnx.onnx_frontend import ONNXGraphImporter

    model = named_nodes(model)
    labels = onnx_labels(model)
    index = {name: k for k, name in enumerate(labels)}

    class Importer(ONNXGraphImporter):
        def _convert_operator(self, op_name, inputs, attr, opset):
            value = super()._convert_operator(op_name, inputs, attr, opset)
            k = index.get(attr["tvm_custom"]["name"])
            return self.bb.emit(value, name_hint=var_name(k)) if k is not None and isinstance(value, relax.Call) \
                else value

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    mod = Importer({}, "float32", keep_params_in_input=False, sanitize=True).from_onnx(model.graph, opset)
    return with_labels(mod, list(labels.values()))


def with_labels(mod: tvm.IRModule, labels: list[str]) -> tvm.IRModule:
    """`mod` carrying the source `labels`. The model's outputs are bound to new variables
    (`gv = ep_src3_`): such a variable takes the label of its value, and the alias is folded away
    (the graph is then the one an unlabelled import gives)."""
    aliases = {str(b.var.name): str(_NAME.match(str(b.value.name)).group(1))
               for block in mod["main"].body.blocks for b in block.bindings
               if isinstance(b.value, relax.Var) and _NAME.match(str(b.value.name)) and not _NAME.match(str(b.var.name))}
    return relax.transform.CanonicalizeBindings()(mod).with_attr(LABELS, labels).with_attr(ALIASES, aliases)


def _label_of(var: relax.Var, labels, aliases) -> str | None:
    name = str(var.name)
    found = _NAME.match(name)
    k = int(found.group(1)) if found else int(aliases[name]) if name in aliases else None
    return str(labels[k]) if k is not None and k < len(labels) else None


def source_label(var: relax.Var, mod: tvm.IRModule) -> str | None:
    """The source operator that `var` holds the value of (its label), if known."""
    if mod.attrs is None or LABELS not in mod.attrs:
        return None
    return _label_of(var, mod.attrs[LABELS], mod.attrs.get(ALIASES, {}))


def binding_label(var: relax.Var, mod: tvm.IRModule) -> str:
    """The source operator that `var` holds the value of (its label), else the variable's name."""
    return source_label(var, mod) or str(var.name)


class _Matcher:
    """Finds, for an expression after FuseOps, the binding before it that computes the same value."""

    def __init__(self, before: relax.Function, labels, aliases):
        self.labels, self.aliases = labels, aliases
        self.bindings = [(b.var, b.value) for block in before.body.blocks for b in block.bindings]
        self.known: dict = {}  # expression after fusion (by identity) -> variable before it

    def resolve(self, expr):
        if isinstance(expr, relax.Var):
            return self.known.get(expr, expr)
        if isinstance(expr, relax.Tuple):
            return [self.resolve(f) for f in expr.fields]
        return expr

    def find(self, value) -> relax.Var | None:
        """The variable before fusion bound to the same call (same callee, same resolved arguments)."""
        if isinstance(value, relax.TupleGetItem):
            target = ("get", self.resolve(value.tuple_value), value.index)
        elif isinstance(value, relax.Call):
            target = ("call", value.op, [self.resolve(a) for a in value.args])
        else:
            return None
        for var, before in self.bindings:
            if self._matches(target, before):
                return var
        return None

    def _matches(self, target, before) -> bool:
        if target[0] == "get":
            return isinstance(before, relax.TupleGetItem) and before.index == target[2] \
                and _equal(target[1], before.tuple_value)
        return isinstance(before, relax.Call) and before.op.same_as(target[1]) \
            and _equal(target[2], list(before.args))


def _equal(a, b) -> bool:
    if isinstance(a, list) or isinstance(b, (relax.Tuple, list)):
        b = list(b.fields) if isinstance(b, relax.Tuple) else b
        return isinstance(a, list) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a.same_as(b)


def _group_labels(matcher: _Matcher, group: relax.Function, args: list) -> tuple[list[str], relax.Var | None]:
    """The labels of the operators a fused group computes, and the variable before fusion of its result."""
    for param, arg in zip(group.params, args):
        matcher.known[param] = matcher.resolve(arg)
    found = []
    for block in group.body.blocks:
        for binding in block.bindings:
            var = matcher.find(binding.value)
            if var is not None:
                matcher.known[binding.var] = var
                found.append(_label_of(var, matcher.labels, matcher.aliases))
    result = matcher.known.get(group.body.body)
    return [label for label in found if label], result


def _record(before: tvm.IRModule, after: tvm.IRModule) -> list[list[str]]:
    matcher = _Matcher(before["main"], before.attrs[LABELS], before.attrs.get(ALIASES, {}))
    matcher.known.update(zip(after["main"].params, before["main"].params))
    steps = []
    for block in after["main"].body.blocks:
        for binding in block.bindings:
            value = binding.value
            callee = value.op if isinstance(value, relax.Call) else None
            if isinstance(callee, tvm.ir.GlobalVar) and isinstance(after[callee], relax.Function):
                found, var = _group_labels(matcher, after[callee], list(value.args))
            else:
                var = matcher.find(value)
                label = _label_of(var, matcher.labels, matcher.aliases) if var is not None else None
                found = [label] if label else []
            if var is not None:
                matcher.known[binding.var] = var
            if callee is not None and (isinstance(callee, tvm.ir.GlobalVar) or str(callee.name) == "relax.call_tir"):
                kernel = callee.name_hint if isinstance(callee, tvm.ir.GlobalVar) else value.args[0].name_hint
                steps.append([kernel, ", ".join(dict.fromkeys(found))])
    return steps


def fuse_ops(mod: tvm.IRModule) -> tvm.IRModule:
    """Relax's FuseOps, recording which source operators each kernel call computes (a module
    without source labels is fused as is)."""
    fused = relax.transform.FuseOps()(mod)
    if mod.attrs is None or LABELS not in mod.attrs:
        return fused
    return fused.with_attr(STEPS, _record(mod, fused))


def step_sources(mod: tvm.IRModule) -> list[tuple[str, str]]:
    """(kernel, source labels) of each kernel call of `main` recorded at fusion, in order."""
    if mod.attrs is None or STEPS not in mod.attrs:
        return []
    return [(str(kernel), str(label)) for kernel, label in mod.attrs[STEPS]]
