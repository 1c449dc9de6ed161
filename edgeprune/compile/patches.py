"""Patch-based execution of an image model's first stage (MCUNetV2's idea): the high-resolution
layers up to a small feature map run patch by patch, so that their full-size activations never
exist; only the stage's input, its output and one patch's tensors are in memory.

The stage is a run of the imported Relax graph from one int8 tensor (the model's input, or the
NCHW view a TFLite model's input takes) to a later one, the cut, that everything after it reads
alone. Splitting the cut into a grid of patches, each tensor of the stage gets the region a patch
needs of it, carried back through every convolution's window, stride and dilation (its halo); a
tensor two layers read at different regions gets the union, and the layer that needs less reads
a crop. All patches need regions of one size, so the stage compiles once, as a Relax module on
patch-sized tensors whose convolutions have no padding: the driver fills the part of each region
that lies outside the image with the tensor's zero point (what the padding would have read), and
the kernels compute the rest exactly as the full-size layers do."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from edgeprune.compile.sources import ALIASES, LABELS, binding_label, source_label
from edgeprune.errors import EdgepruneError

_ELEMENTWISE = {"relax.add", "relax.subtract", "relax.multiply", "relax.maximum", "relax.minimum", "relax.clip",
                "relax.nn.relu", "relax.quantize", "relax.dequantize"}
_CONV = "relax.nn.conv2d"
STAGE_KERNEL = "edgeprune_patch_stage"  # the driver's function that runs the stage's patches


@dataclass(frozen=True)
class Region:
    """Rows and columns of a tensor that the patch whose output starts at row 0, column 0 needs;
    the patch starting at output row r needs rows `top + r * stride` on (columns alike)."""

    top: int
    left: int
    height: int
    width: int
    stride: tuple[int, int]  # rows, columns of this tensor per row, column of the stage's output

    def union(self, other: "Region") -> "Region":
        if other.stride != self.stride:
            raise _NotPatchable("two paths from one tensor to the stage's output have different strides")
        top, left = min(self.top, other.top), min(self.left, other.left)
        return Region(top, left, max(self.top + self.height, other.top + other.height) - top,
                      max(self.left + self.width, other.left + other.width) - left, self.stride)

    def window(self, kernel: tuple[int, int], strides: tuple[int, int], padding: tuple[int, int],
               dilation: tuple[int, int]) -> "Region":
        """The input region a convolution needs to compute this output region."""
        rows = (self.height - 1) * strides[0] + dilation[0] * (kernel[0] - 1) + 1
        cols = (self.width - 1) * strides[1] + dilation[1] * (kernel[1] - 1) + 1
        return Region(self.top * strides[0] - padding[0], self.left * strides[1] - padding[1], rows, cols,
                      (self.stride[0] * strides[0], self.stride[1] * strides[1]))


class NoPatchStageError(EdgepruneError):
    """The model has no stage that can run in patches (or none for this grid)."""


class _NotPatchable(Exception):
    """A cut whose stage cannot run in patches (said to the user only if they chose the cut)."""


@dataclass(frozen=True)
class PatchTensor:
    """An int8 tensor of the stage as the driver sees it: its label, full height and width, the
    region a patch holds and the value its padding reads (its zero point)."""

    label: str
    channels: int
    height: int
    width: int
    region: Region
    zero_point: int

    def origin(self, row: int, col: int) -> tuple[int, int]:
        """The tensor's row and column at the region's corner for the patch starting at output (row, col)."""
        return self.region.top + row * self.region.stride[0], self.region.left + col * self.region.stride[1]

    def crosses_border(self, rows: list[int], cols: list[int]) -> bool:
        """Whether some patch's region reaches outside the image (the driver then fills it)."""
        return any(not (0 <= top and top + self.region.height <= self.height
                        and 0 <= left and left + self.region.width <= self.width)
                   for top, left in (self.origin(r, c) for r in rows for c in cols))


@dataclass
class PatchStage:
    """The stage to run in patches: the grid, the patches' output corners, the stage's input and
    output, its int8 tensors by label, and the Relax module of one patch."""

    grid: tuple[int, int]
    rows: list[int]  # output row of each patch row's first row (the last patch may overlap)
    cols: list[int]
    input: PatchTensor
    output: PatchTensor
    tensors: dict[str, PatchTensor]  # by source label: the int8 values a step of the patch module writes
    labels: set[str]  # the source operators the stage computes
    module: tvm.IRModule  # main(x: the input region) -> the output region, convolutions unpadded
    macs: int  # multiply-accumulates of the stage's convolutions at full size
    patch_macs: int  # the same over all patches (halos computed again)
    notes: list[str] = field(default_factory=list)
    estimate: tuple[int, int] | None = None  # peak bytes estimated with and without the stage (`choose_stage`)

    @property
    def patch_height(self) -> int:
        return self.output.region.height

    @property
    def patch_width(self) -> int:
        return self.output.region.width

    def describe(self) -> str:
        return (f"patches {self.grid[0]}x{self.grid[1]} of {self.patch_height}x{self.patch_width} up to "
                f"{self.output.label}")


def parse_grid(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """`--patch-grid`: "RxC" or "N" (NxN); None, "" or "off": no patches."""
    if text is None or text in ("", "off"):
        return None
    if isinstance(text, tuple):
        rows, cols = text
    else:
        parts = str(text).lower().split("x")
        if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
            raise EdgepruneError(f"--patch-grid {text!r}: give rows x columns, e.g. 2x2 or 3 (3x3), or off")
        rows, cols = int(parts[0]), int(parts[-1])
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise EdgepruneError(f"--patch-grid {text!r}: a grid needs at least 2 patches")
    return rows, cols


class _Graph:
    """The bindings of an imported `main`, which depend on its input, and where each is used."""

    def __init__(self, mod: tvm.IRModule):
        self.mod = mod
        self.main = mod["main"]
        if len(self.main.params) != 1:
            raise _NotPatchable("the model has more than one input")
        self.bindings = [(b.var, b.value) for block in self.main.body.blocks for b in block.bindings]
        self.index = {var: i for i, (var, _) in enumerate(self.bindings)}
        self.data = {self.main.params[0]}
        self.users: dict = {}
        for i, (var, value) in enumerate(self.bindings):
            for arg in _vars(value):
                self.users.setdefault(arg, []).append(i)
                if arg in self.data:
                    self.data.add(var)
        returned = self.main.body.body
        for arg in _vars(returned):
            self.users.setdefault(arg, []).append(len(self.bindings))

    def op(self, i: int) -> str:
        value = self.bindings[i][1]
        return str(value.op.name) if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) else ""

    def is_int8_image(self, var) -> bool:
        ty = var.ty
        return isinstance(ty, relax.TensorType) and str(ty.dtype) == "int8" and ty.ndim == 4

    def last_use(self, var) -> int:
        return max(self.users.get(var, [-1]))


def _vars(expr) -> list:
    if isinstance(expr, relax.Var):
        return [expr]
    if isinstance(expr, relax.Tuple):
        return [v for f in expr.fields for v in _vars(f)]
    if isinstance(expr, relax.Call):
        return [v for a in expr.args for v in _vars(a)]
    return []


def _shape(var) -> tuple[int, ...]:
    return tuple(int(s) for s in var.ty.shape)


def _pair(values) -> tuple[int, int]:
    return int(values[0]), int(values[1])


def _stage_input(graph: _Graph) -> int:
    """Index of the first binding of the stage, after the input's layout change if any: the stage
    starts at the model's input or at the NCHW view of it (a TFLite model's input is NHWC)."""
    param = graph.main.params[0]
    users = graph.users.get(param, [])
    if len(users) == 1 and graph.op(users[0]) == "relax.permute_dims" \
            and graph.is_int8_image(graph.bindings[users[0]][0]):
        return users[0] + 1
    return 0


def _cuts(graph: _Graph, start: int) -> list[int]:
    """The bindings (indices) that can end a stage starting at `start`: int8 NCHW values that
    everything after them reads alone, before the first operation a patch cannot compute."""
    cuts, open_until = [], graph.last_use(_source(graph, start))
    for i in range(start, len(graph.bindings)):
        var, _ = graph.bindings[i]
        if var not in graph.data:
            continue
        if graph.op(i) not in _ELEMENTWISE and graph.op(i) != _CONV:
            break
        if open_until <= i and graph.is_int8_image(var) and graph.op(i) == "relax.quantize" \
                and graph.last_use(var) < len(graph.bindings):
            cuts.append(i)
        open_until = max(open_until, graph.last_use(var))
    return cuts


def _regions(graph: _Graph, start: int, end: int, output: Region) -> dict:
    """The region of every value of the stage (start..end) that a patch of `output` needs."""
    source = _source(graph, start)
    regions = {graph.bindings[end][0]: output}
    for i in range(end, start - 1, -1):
        var, value = graph.bindings[i]
        if var not in graph.data or var not in regions:
            continue
        region = regions[var]
        if graph.op(i) == _CONV:
            attrs, weight = value.attrs, _shape(value.args[1])
            if str(attrs.data_layout) != "NCHW" or str(attrs.kernel_layout) != "OIHW":
                raise _NotPatchable(f"{binding_label(var, graph.mod)} is not an NCHW convolution")
            needs = [(value.args[0], region.window(weight[2:], _pair(attrs.strides), _pair(attrs.padding),
                                                   _pair(attrs.dilation)))]
        else:
            needs = [(a, region) for a in _vars(value) if a in graph.data]
            for arg, _ in needs:
                if _shape(arg)[2:] != _shape(var)[2:]:
                    raise _NotPatchable(f"{binding_label(var, graph.mod)} broadcasts an image")
        for arg, need in needs:
            if graph.index.get(arg, -1) < start and not arg.same_as(source):
                raise _NotPatchable(f"{binding_label(var, graph.mod)} reads a value from before the stage")
            regions[arg] = regions[arg].union(need) if arg in regions else need
    return regions


def _starts(size: int, parts: int) -> list[int]:
    """The first output row (or column) of each of `parts` patches of equal size covering `size`;
    the last one is moved back to end at `size` when `parts` does not divide it."""
    length = math.ceil(size / parts)
    return [min(k * length, size - length) for k in range(parts)]


def _zero_point(graph: _Graph, var) -> int:
    """The zero point of an int8 value: of the quantize that makes it, else of a dequantize reading it."""
    i = graph.index.get(var)
    candidates = [graph.bindings[i][1]] if i is not None and graph.op(i) == "relax.quantize" else []
    candidates += [graph.bindings[u][1] for u in graph.users.get(var, []) if u < len(graph.bindings)
                   and graph.op(u) == "relax.dequantize"]
    for call in candidates:
        zero = call.args[2].value.numpy() if isinstance(call.args[2], tvm.ir.GenericConst) else None
        if zero is not None and zero.size == 1:
            return int(zero.reshape(-1)[0])
    raise _NotPatchable(f"{binding_label(var, graph.mod)} has no per-tensor zero point")


class _PatchModule:
    """Builds the Relax module of one patch: the stage's bindings on region-sized values, the
    convolutions unpadded, a crop where a layer reads less of a value than its region."""

    def __init__(self, graph: _Graph, regions: dict, start: int, end: int, source):
        self.graph, self.regions, self.source = graph, regions, source
        self.start, self.end = start, end
        self.values: dict = {}
        self.bb = relax.BlockBuilder()

    def build(self) -> tvm.IRModule:
        top = self.regions[self.source]
        channels = _shape(self.source)[1]
        x = relax.Var("x", relax.TensorType([1, channels, top.height, top.width], "int8"))
        with self.bb.function("main", [x]):
            with self.bb.dataflow():
                self.values[self.source] = x
                for i, (var, value) in enumerate(self.graph.bindings[:self.end + 1]):
                    if var not in self.graph.data:
                        self.values[var] = self.bb.emit(self._remapped(value), name_hint=str(var.name))
                    elif i >= self.start and var in self.regions:
                        self.values[var] = self.bb.emit(self._patch_call(var, value), name_hint=str(var.name))
                out = self.bb.emit_output(self.values[self.graph.bindings[self.end][0]])
            self.bb.emit_func_output(out)
        mod = self.bb.finalize()
        attrs = self.graph.mod.attrs
        if attrs is not None and LABELS in attrs:
            mod = mod.with_attr(LABELS, attrs[LABELS]).with_attr(ALIASES, attrs.get(ALIASES, {}))
        return relax.transform.DeadCodeElimination()(mod)

    def _remapped(self, value):
        if isinstance(value, relax.Var):
            return self.values[value]
        if isinstance(value, relax.Tuple):
            return relax.Tuple([self._remapped(f) for f in value.fields])
        if isinstance(value, relax.Call):
            return relax.Call(value.op, [self._remapped(a) for a in value.args], value.attrs, value.ty_args)
        return value

    def _patch_call(self, var, value):
        region = self.regions[var]
        if self.graph.op(self.graph.index[var]) == _CONV:
            attrs, weight = value.attrs, _shape(value.args[1])
            need = region.window(weight[2:], _pair(attrs.strides), _pair(attrs.padding), _pair(attrs.dilation))
            return relax.op.nn.conv2d(self._cropped(value.args[0], need), self._remapped(value.args[1]),
                                      strides=_pair(attrs.strides), padding=(0, 0, 0, 0),
                                      dilation=_pair(attrs.dilation), groups=int(attrs.groups),
                                      out_dtype=attrs.out_dtype)
        args = [self._cropped(a, region) if a in self.graph.data else self._remapped(a) for a in value.args]
        return relax.Call(value.op, args, value.attrs, value.ty_args)

    def _cropped(self, var, need: Region):
        """`var`'s patch value cut to `need` (a crop of an int8 value; a dequantize is crossed, so that
        the integer lowering still sees dequantize -> layer)."""
        have = self.regions[var]
        if have == need:
            return self.values[var]
        i = self.graph.index.get(var)
        if i is not None and self.graph.op(i) == "relax.dequantize":
            call = self.graph.bindings[i][1]
            return self.bb.emit(relax.Call(call.op, [self._cropped(call.args[0], need), *map(self._remapped, call.args[1:])],
                                           call.attrs, call.ty_args))
        rows, cols = need.top - have.top, need.left - have.left
        return self.bb.emit(relax.op.strided_slice(self.values[var], axes=[2, 3], begin=[rows, cols],
                                                   end=[rows + need.height, cols + need.width], assume_inbound=True))


def _macs(graph: _Graph, start: int, end: int, regions: dict | None = None, patches: int = 1) -> int:
    """Multiply-accumulates of the stage's convolutions: at full size, or over `patches` patches of `regions`."""
    total = 0
    for i in range(start, end + 1):
        var, value = graph.bindings[i]
        if graph.op(i) != _CONV or var not in graph.data:
            continue
        _, channels, height, width = _shape(var)
        if regions is not None:
            height, width = regions[var].height, regions[var].width
        weight = _shape(value.args[1])
        total += channels * height * width * weight[1] * weight[2] * weight[3] * patches
    return total


def _tensor(graph: _Graph, var, region: Region) -> PatchTensor:
    _, channels, height, width = _shape(var)
    return PatchTensor(binding_label(var, graph.mod), channels, height, width, region, _zero_point(graph, var))


def _source(graph: _Graph, start: int):
    """The value a stage starting at binding `start` reads: the model's input, or the binding before."""
    return graph.main.params[0] if start == 0 else graph.bindings[start - 1][0]


def _output_region(graph: _Graph, end: int, grid: tuple[int, int]) -> Region:
    """The region of the cut (binding `end`) that one patch of `grid` computes."""
    var = graph.bindings[end][0]
    _, _, height, width = _shape(var)
    if grid[0] > height or grid[1] > width:
        raise _NotPatchable(f"a {grid[0]}x{grid[1]} grid is finer than {binding_label(var, graph.mod)}'s "
                            f"{height}x{width} pixels")
    return Region(0, 0, math.ceil(height / grid[0]), math.ceil(width / grid[1]), (1, 1))


def _stage(graph: _Graph, start: int, end: int, grid: tuple[int, int]) -> PatchStage:
    var, output = graph.bindings[end][0], _output_region(graph, end, grid)
    _, _, height, width = _shape(var)
    rows, cols = _starts(height, grid[0]), _starts(width, grid[1])
    regions = _regions(graph, start, end, output)
    source = _source(graph, start)
    tensors = {}
    for v, region in regions.items():
        i = graph.index.get(v, -1)
        if i >= start and graph.is_int8_image(v) and graph.op(i) == "relax.quantize":
            tensors[binding_label(v, graph.mod)] = _tensor(graph, v, region)
    labels = {source_label(v, graph.mod) for v, _ in graph.bindings[start:end + 1] if v in graph.data} - {None}
    return PatchStage(grid, rows, cols, _tensor(graph, source, regions[source]), _tensor(graph, var, output),
                      tensors, labels, _PatchModule(graph, regions, start, end, source).build(),
                      _macs(graph, start, end), _macs(graph, start, end, regions, grid[0] * grid[1]))


def _bytes(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape))


def _estimate(graph: _Graph, start: int, end: int, grid: tuple[int, int], rest_peak: int) -> int:
    """RAM the stage ending at `end` would take, roughly: its input and output at full size, one
    patch's two largest regions, or what the layers after it take if more."""
    regions = _regions(graph, start, end, _output_region(graph, end, grid))
    sizes = sorted((_shape(v)[1] * r.height * r.width for v, r in regions.items() if graph.is_int8_image(v)),
                   reverse=True)
    return max(_bytes(_shape(_source(graph, start))) + _bytes(_shape(graph.bindings[end][0])) + sum(sizes[:2]),
               rest_peak)


def choose_stage(mod: tvm.IRModule, grid: tuple[int, int], rest_peak, whole_peak: int,
                 until: str | None = None) -> PatchStage:
    """The patch stage for `grid` ending at the layer labelled `until`, or, without it, the one whose
    estimated RAM is least (the earliest of those within 5 % of it: fewer layers computed again);
    `rest_peak(label)` is what the layers after a cut labelled so take, `whole_peak` what the
    model takes without patches, estimated alike (from the full build's plan): a stage estimated
    to save nothing carries a note saying so. An error names why no stage fits, or the layers a
    stage can end at."""
    graph = _Graph(mod)
    start = _stage_input(graph)
    cuts = {binding_label(graph.bindings[end][0], mod): end for end in _cuts(graph, start)}
    if until is not None:
        if until not in cuts:
            raise EdgepruneError(f"--patch-until {until!r}: a patch stage can end at "
                                 f"{', '.join(cuts) or 'no layer of this model'}")
        cuts = {until: cuts[until]}
    estimates, reasons = {}, []
    for label, end in cuts.items():
        try:
            estimates[end] = _estimate(graph, start, end, grid, rest_peak(label))
        except _NotPatchable as exc:
            reasons.append(str(exc))
    if until is not None and reasons:
        raise EdgepruneError(f"--patch-until {until!r}: {reasons[0]}")
    if not estimates:
        why = f" ({reasons[0]})" if reasons else ""
        raise NoPatchStageError(f"--patch-grid {grid[0]}x{grid[1]}: no stage of this model can run in patches{why}; "
                             "patches need an image model whose first layers are int8 convolutions and "
                             "element-wise layers up to a feature map that the rest reads alone")
    least = min(estimates.values())
    end = min(e for e, estimate in estimates.items() if estimate <= least * 1.05)
    stage = _stage(graph, start, end, grid)
    stage.estimate = (estimates[end], whole_peak)
    if estimates[end] >= whole_peak:
        stage.notes.append(f"--patch-grid {grid[0]}x{grid[1]} saves no RAM on this model: its {'' if until else 'best '}"
                           f"stage (up to {stage.output.label}) is estimated at {estimates[end]:,} B against "
                           f"{whole_peak:,} B without patches; a finer grid leaves less of the stage in memory")
    return stage
