"""A `.tflite` flatbuffer read (with the `tflite` package) into plain Python: its tensors with their
int8 data and quantization, and its operators with their builtin name, version and options.

Everything is read eagerly, inside one guard, so that a truncated or corrupt file fails here with
one clear error and not later in the middle of the import."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeprune.errors import EdgepruneError

_IDENTIFIER = b"TFL3"
_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8", 10: "float64"}


@dataclass(frozen=True)
class Tensor:
    """One tensor: shape, dtype, per-tensor or per-channel quantization and constant data (or None)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: np.ndarray  # float32, empty if not quantized
    zero_point: np.ndarray  # int64
    quantized_dimension: int
    data: np.ndarray | None

    @property
    def quantized(self) -> bool:
        return self.scale.size > 0


@dataclass(frozen=True)
class Operator:
    """One operator: its position in the graph, builtin name and version, tensor indices (-1: absent)
    and its builtin options table (a `tflite` options object, or None)."""

    index: int
    name: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: object = None


@dataclass
class Graph:
    tensors: list[Tensor] = field(default_factory=list)
    operators: list[Operator] = field(default_factory=list)
    inputs: tuple[int, ...] = ()
    outputs: tuple[int, ...] = ()


def _builtin_names() -> dict[int, str]:
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def _options(op, name: str):
    """The operator's builtin options as the `tflite` class named after the op (Conv2DOptions...)."""
    import tflite

    table = op.BuiltinOptions()
    if table is None:
        return None
    option_names = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
    cls = getattr(tflite, option_names.get(op.BuiltinOptionsType(), ""), None)
    if cls is None:
        return None
    options = cls()
    options.Init(table.Bytes, table.Pos)
    return options


def _tensor(model, subgraph, index: int) -> Tensor:
    t = subgraph.Tensors(index)
    dtype = _DTYPES.get(t.Type(), f"type {t.Type()}")
    q = t.Quantization()
    scale = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else np.zeros(0, np.float32)
    zero = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else np.zeros(scale.size, np.int64)
    buffer = model.Buffers(t.Buffer())
    data = None
    if buffer is not None and buffer.DataLength() and dtype in _DTYPES.values():
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        data = buffer.DataAsNumpy().view(np.dtype(dtype)).reshape(shape).copy()
    return Tensor(index, (t.Name() or b"").decode("utf-8", "replace"),
                  tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else (), dtype,
                  np.asarray(scale, np.float32), np.asarray(zero, np.int64),
                  int(q.QuantizedDimension()) if q is not None else 0, data)


def _parse(buf: bytes) -> Graph:
    import tflite

    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise EdgepruneError(f"the model has {model.SubgraphsLength()} subgraphs; edgeprune compiles one")
    subgraph = model.Subgraphs(0)
    names = _builtin_names()
    graph = Graph(inputs=tuple(int(i) for i in subgraph.InputsAsNumpy()),
                  outputs=tuple(int(i) for i in subgraph.OutputsAsNumpy()))
    graph.tensors = [_tensor(model, subgraph, i) for i in range(subgraph.TensorsLength())]
    for index in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(index)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = names.get(builtin, f"builtin {builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM {(code.CustomCode() or b'').decode('utf-8', 'replace')}"
        graph.operators.append(Operator(index, name, int(code.Version()),
                                        tuple(int(i) for i in op.InputsAsNumpy()) if op.InputsLength() else (),
                                        tuple(int(i) for i in op.OutputsAsNumpy()), _options(op, name)))
    return graph


def read_tflite(path: str | Path) -> Graph:
    """The graph of a `.tflite` file; EdgepruneError if it is missing, not a TFLite flatbuffer, or damaged."""
    path = Path(path)
    if not path.is_file():
        raise EdgepruneError(f"model file {path} does not exist")
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != _IDENTIFIER:
        raise EdgepruneError(f"{path} is not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        return _parse(buf)
    except (struct.error, IndexError, ValueError, TypeError, AttributeError) as error:
        raise EdgepruneError(
            f"{path} is a truncated or corrupt TFLite file ({type(error).__name__}: {error})") from None
