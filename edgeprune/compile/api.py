"""`edgeprune.compile(...)`: a model in, a self-contained firmware folder out."""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx
import tvm
from tvm import tirx

from edgeprune._atomic import atomic_directory
from edgeprune.artefact import content_hash
from edgeprune.compile import codegen, firmware, frontend, passes, tflite_frontend
from edgeprune.compile.defaults import (BACKENDS, DEFAULT_STACK_BYTES, KERNEL_CHOICES, OPTIMIZE_CHOICES, SPARSE_CHOICES,
                                        WEIGHT_LAYOUTS)
from edgeprune.compile.elfsize import memory_breakdown
from edgeprune.compile.fingerprint import compiler_fingerprint
from edgeprune.compile.inplace import kernel_aliases, take_twins
from edgeprune.compile.int8 import Layer, kernel_family, layers_with_minus_128
from edgeprune.compile.patch_driver import PatchCode
from edgeprune.compile.patch_plan import replace_stage, rest_peak, step_fills, whole_peak
from edgeprune.compile.patches import STAGE_KERNEL, choose_stage, parse_grid
from edgeprune.compile.plan import Plan, build_plan, place_plan
from edgeprune.compile.qdq_edges import is_quantized, strip_qdq_edges
from edgeprune.compile.qdq_pad import pad_int8
from edgeprune.compile.workspace import workspace_bytes
from edgeprune.errors import EdgepruneError, ModelTooLargeError
from edgeprune.targets import Target, load_target



@dataclass
class CompiledModel:
    """A compiled-model folder (kept as an absolute path: emulators and build tools run in other
    working directories) and its manifest."""

    path: Path
    manifest: dict

    def __post_init__(self) -> None:
        self.path = Path(self.path).resolve()

    @property
    def elf(self) -> Path:
        return self.path / "firmware.elf"

    @property
    def onnx(self) -> Path:
        return self.path / "model.onnx"

    @property
    def source(self) -> Path:
        """The model file it was compiled from: model.tflite for the TFLite front end, else model.onnx."""
        return self.path / "model.tflite" if self.manifest.get("frontend") == "tflite" else self.onnx

    @classmethod
    def load(cls, path: str | Path) -> "CompiledModel":
        path = Path(path).resolve()
        manifest = path / "manifest.json"
        if not manifest.is_file():
            raise EdgepruneError(f"{path} is not a compiled-model folder (no manifest.json); run edgeprune compile")
        return cls(path, json.loads(manifest.read_text()))


def _kernel_module(mod: tvm.IRModule, plan: Plan) -> tvm.IRModule:
    used = {step.kernel for step in plan.steps}
    return tvm.IRModule({gv: f for gv, f in mod.functions.items()
                         if isinstance(f, tirx.PrimFunc) and gv.name_hint in used})


def _may_alias(kernels: tvm.IRModule, plan: Plan) -> tvm.IRModule:
    """Kernels that run in place lose the `noalias` promise on their pointers (their output is one
    of their inputs), so that LLVM keeps their loads and stores in program order."""
    inplace = {plan.steps[t].kernel for t, _ in plan.inplace}
    return tvm.IRModule({gv: f.without_attr("tirx.noalias") if gv.name_hint in inplace else f
                         for gv, f in kernels.functions.items()})


def _place(plan: Plan, kernels: tvm.IRModule, unlowered: tvm.IRModule, lower, io_in_arena: bool, inplace: bool,
           workspace_in_arena: bool, regions: dict[str, int] | None = None) -> tuple[tvm.IRModule, dict[str, int]]:
    """Place the plan with the arena options. Steps run in place on a kernel with an in-place twin
    (convolutions keeping a ring of input rows) then call the twin, and the plan is placed again
    with the twins' workspace. `regions`: steps that are not kernels and the arena bytes each
    takes for itself (a patch stage's arena), placed whatever `workspace_in_arena` says. Returns
    the kernels the steps call and their workspace bytes (with `regions`)."""
    regions = regions or {}

    def placed(aliases, per_kernel: dict[str, int]) -> None:
        place_plan(plan, io_in_arena, aliases, [regions.get(s.kernel) or (per_kernel[s.kernel] if workspace_in_arena
                                                                          else 0) for s in plan.steps])

    per_kernel = {**workspace_bytes(kernels), **regions}
    placed(kernel_aliases(kernels, twins=True) if inplace else None, per_kernel)
    before = [s.kernel for s in plan.steps]
    if inplace:
        kernels = take_twins(plan, kernels, unlowered, lower)
    if [s.kernel for s in plan.steps] != before:
        chosen, per_kernel = list(plan.inplace), {**workspace_bytes(kernels), **regions}
        placed(kernel_aliases(kernels), per_kernel)
        if plan.inplace != chosen:
            raise EdgepruneError(f"internal error: the in-place steps {chosen} became {plan.inplace} "
                                 "once their in-place kernels were placed")
    return kernels, per_kernel


@dataclass
class _Patches:
    """A patch stage as compiled: its driver code, lowered kernels and their workspace."""

    code: PatchCode
    kernels: tvm.IRModule
    workspace: dict[str, int]

    @property
    def plan(self) -> Plan:
        return self.code.plan

    def entry(self, layers: dict) -> dict:
        """The manifest's `patches`: the grid, the stage and one patch's steps and arena."""
        stage = self.code.stage
        return {"grid": list(stage.grid), "description": stage.describe(), "ends_at": stage.output.label,
                "patch_output": [stage.output.channels, stage.patch_height, stage.patch_width],
                "patch_input": [stage.input.channels, stage.input.region.height, stage.input.region.width],
                "rows": stage.rows, "cols": stage.cols, "patch_arena_bytes": self.plan.arena_bytes,
                "macs": stage.macs, "patch_macs": stage.patch_macs,
                "recompute": round(stage.patch_macs / stage.macs - 1, 4) if stage.macs else 0.0,
                # live bytes estimated from the tensors' sizes (the plan's placement may differ)
                "estimated_peak_bytes": stage.estimate[0], "estimated_peak_bytes_without": stage.estimate[1],
                "steps": [_step_entry(s, self.workspace, layers) for s in self.plan.steps]}


def _patch_stage(imported: tvm.IRModule, grid: tuple[int, int], until: str | None, plan: Plan, tvm_target,
                 options, lower, inplace: bool) -> _Patches:
    """Choose and compile the patch stage of `grid`, and put it in `plan` in place of its layers."""
    stage = choose_stage(imported, grid, rest_peak(plan), whole_peak(plan), until)
    graph, patch = plan_graph(stage.module, tvm_target, options)
    unlowered = _renamed(_kernel_module(graph, patch), patch, "patch_")
    kernels, workspace = _place(patch, lower(unlowered), unlowered, lower, True, inplace, True)
    replace_stage(plan, stage)
    return _Patches(PatchCode(stage, patch, step_fills(patch, stage)), _may_alias(kernels, patch), workspace)


def _renamed(kernels: tvm.IRModule, plan: Plan, prefix: str) -> tvm.IRModule:
    """The kernels, and the plan's calls of them, named with `prefix` (a patch stage's kernels
    are linked beside the model's)."""
    for step in plan.steps:
        step.kernel = prefix + step.kernel
    return tvm.IRModule({prefix + gv.name_hint: f.with_attr("global_symbol", prefix + gv.name_hint)
                         for gv, f in kernels.functions.items()})


def _memory_entry(plan: Plan, baseline: int, workspace: int, beside: int, stack_bytes: int,
                  steps: list[dict], patch_weights: int = 0) -> dict:
    """The manifest's memory: planned arena, liveness bound, input/output and workspace bytes
    beside the arena, and the saving of the arena options against arena + input + output +
    workspace without them."""
    return {
        "weights_bytes": int(sum(w.nbytes for w in plan.weights)) + patch_weights,
        "arena_bytes": plan.arena_bytes,
        "liveness_bound_bytes": plan.liveness_bound_bytes,
        "io_outside_arena_bytes": plan.io_bytes_outside_arena,
        "baseline_bytes": baseline,  # arena + inputs + outputs + workspace, all apart, no in-place layers
        "saved_bytes": baseline - plan.arena_bytes - plan.io_bytes_outside_arena - beside,
        "inplace_steps": [t for t, _ in plan.inplace],
        "inplace_layers": [step_label(steps[t]) + (" (ring of input rows)" if steps[t]["kernel"].endswith("_inplace")
                                                   else "") for t, _ in plan.inplace],
        "workspace_bytes": workspace,  # the most one kernel takes
        "workspace_outside_arena_bytes": beside,
        "stack_bytes": stack_bytes,
        "arena": {**plan.timeline([step_label(s) for s in steps]), "workspace_outside_arena_bytes": beside,
                  "io_outside_arena_bytes": plan.io_bytes_outside_arena},
    }


def _sparse_entry(steps: list[dict]) -> dict:
    """The dense layers weighed for block-sparse weights: each one's choice, and the weight bytes
    that the sparse ones save against their dense storage."""
    weighed = [(i, s["layer"]) for i, s in enumerate(steps) if s.get("layer", {}).get("sparse")]
    return {"layers": [{"step": i, "description": layer["description"], "choice": layer["sparse"]}
                       for i, layer in weighed],
            "sparse_layers": sum(layer["weights"] in ("block4-int8", "2:4-int8") for _, layer in weighed),
            "saved_bytes": sum(layer["dense_weight_bytes"] - layer["weight_bytes"] for _, layer in weighed)}


def _kernel_code(kernels: tvm.IRModule, target: Target, backend: str, src: Path) -> str:
    """Build the kernels; returns the file the Makefile links (an object or C source)."""
    if backend == "llvm":
        tvm.get_global_func("target.build.llvm")(kernels, target.llvm_target()).write_to_file(str(src / "kernels.o"))
        return "src/kernels.o"
    source = tvm.get_global_func("target.build.c")(kernels, _c_target(target)).inspect_source()
    (src / "kernels.c").write_text(_bare_metal_c(source))
    return "src/kernels.c"


def _bare_metal_c(source: str) -> str:
    """TVM's C output includes its FFI headers only for declarations the kernels do not need on
    the device (plain pointer signatures, no packed API); the workspace calls are ours."""
    kept = [line for line in source.splitlines()
            if not line.startswith(('#include "tvm/', "#define TVM_EXPORTS"))]
    preamble = ["#include <stdint.h>", '#include "ep_workspace.h"', "#define TVM_DLL"]
    return "\n".join(preamble + kept) + "\n"


def _c_target(target: Target):
    return tvm.target.Target({"kind": "c", "mcpu": target.cpu})


def plan_model(onnx_model: onnx.ModelProto, tvm_target,
               options: passes.PassOptions = passes.PassOptions()) -> tuple[tvm.IRModule, Plan]:
    """Run the graph passes and plan memory: the Relax module and its execution plan."""
    return plan_graph(frontend.to_relax(onnx_model), tvm_target, options)


def plan_graph(mod: tvm.IRModule, tvm_target,
               options: passes.PassOptions = passes.PassOptions()) -> tuple[tvm.IRModule, Plan]:
    """The graph passes on an imported Relax module, and its execution plan."""
    graph = passes.run_passes(mod, passes.GRAPH_PASSES, tvm_target, options)
    return graph, build_plan(graph)


def onnx_to_compile(model: Any, input_shape=None) -> tuple[onnx.ModelProto, tuple[list, list], list[str]]:
    """The ONNX graph that compiling `model` (what load_for_compile takes) compiles and saves as
    the folder's model.onnx: the front end's changes, the int8 edges stripped (their quantization
    returned as (inputs, outputs)) and int8 pads; and notes saying what changed."""
    onnx_model, notes = frontend.load_for_compile(model, input_shape)
    edges: tuple[list, list] = ([], [])
    if is_quantized(onnx_model):
        onnx_model, *edges = strip_qdq_edges(onnx_model)
        onnx_model, padded = pad_int8(onnx_model)
        notes = notes + padded
    return onnx_model, edges, notes


def _import(model: Any, input_shape, tvm_target, options: passes.PassOptions):
    """(graph, plan, imported, edges, notes, write_source) of any model: a `.tflite` file or what
    load_for_compile takes; `imported` is the Relax module before the graph passes; notes say what
    the front end changed; write_source(folder) saves the model file beside the firmware and
    returns its path."""
    if tflite_frontend.is_tflite(model):
        mod, inputs, outputs, notes = tflite_frontend.import_tflite(model, options.rounding)
        graph, plan = plan_graph(mod, tvm_target, options)
        write_tflite = lambda folder: Path(shutil.copyfile(model, folder / "model.tflite"))  # noqa: E731
        return graph, plan, mod, (inputs, outputs), notes, write_tflite
    onnx_model, edges, notes = onnx_to_compile(model, input_shape)
    mod = frontend.to_relax(onnx_model)
    graph, plan = plan_graph(mod, tvm_target, options)

    def write_onnx(folder: Path) -> Path:
        onnx.save(onnx_model, folder / "model.onnx")
        return folder / "model.onnx"

    return graph, plan, mod, edges, notes, write_onnx


def _tensor_entries(refs, quantization) -> list[dict]:
    """Shape, dtype and bytes of each input or output as the C API takes or returns it, with scale
    and zero point if int8; at a float edge float32, with its int8 tensor inside under "int8"."""
    entries = [{"shape": list(r.shape), "dtype": r.dtype, "bytes": r.nbytes} for r in refs]
    for entry, edge in zip(entries, quantization):
        if edge.api_dtype == "float32":
            entry.update(dtype="float32", bytes=4 * entry["bytes"],
                         int8={"scale": edge.scale, "zero_point": edge.zero_point, "bytes": entry["bytes"]})
        else:
            entry.update(scale=edge.scale, zero_point=edge.zero_point)
    return entries


def step_label(step: dict) -> str:
    """A manifest step as people read it: the source operators it computes (ONNX node names, TFLite
    operator indices) and what it computes: the layer where its kernel says (the DSP kernels: e.g.
    `conv 1x1 s1 64->64 @25x5`), else its kernel and output shape."""
    if "layer" in step:
        what = step["layer"]["description"]
    else:
        what = f"{step['kernel']} -> {'x'.join(map(str, step['args'][-1]['shape']))}" if step["args"] else step["kernel"]
    return f"{step['source']}: {what}" if step.get("source") else what


def _step_entry(step, per_kernel_workspace: dict[str, int], layers: dict) -> dict:
    """A manifest step: its kernel, workspace and arguments, and the layer it computes if known."""
    entry = {"kernel": step.kernel, "source": step.source, "workspace_bytes": per_kernel_workspace[step.kernel],
             "args": [asdict(a) for a in step.args]}
    if layers.get(step.kernel) is not None:
        entry["layer"] = asdict(layers[step.kernel])
    return entry


def compile_model(
    model: Any,
    target: str = "mps2-an386",
    out: str | Path = "build/model",
    *,
    backend: str = "llvm",
    input_shape: tuple[int, ...] | None = None,
    stack_bytes: int = DEFAULT_STACK_BYTES,
    rounding: str = "double",
    kernels: str = "auto",
    weights: str = "auto",
    sparse: str = "auto",
    optimize: str = "speed",
    io_in_arena: bool = True,
    inplace: bool = True,
    workspace_in_arena: bool = True,
    patch_grid: str | tuple[int, int] | None = None,
    patch_until: str | None = None,
) -> CompiledModel:
    """Compile `model` (int8 .tflite or ONNX path, zoo name, ModelProto or torch module with `input_shape`) for a
    board into the folder `out`: C driver, kernels, runtime, Makefile, firmware.elf, manifest.
    An ONNX input's symbolic axes take their sizes from `input_shape` (a symbolic batch axis: 1).
    An int8 model requantizes with TFLM's `rounding`: "double" (its default) or "single".
    `kernels`: "auto" (the hand-written int8 kernels where the core has the DSP extension or NEON) or "portable";
    `weights`: how the DSP kernels store weights, "int16" (fastest), "int8" (least flash) or "auto"
    (int16 for convolutions, int8 for dense layers);
    `sparse`: the DSP dense layers' block-sparse weights, "auto" (per layer where they win,
    dsp/sparse_dense.choose), "on" or "off".
    `optimize`: "speed" (default) or "size": the DSP convolution kernels' smaller variants (shorter
    loop bodies, no separate path for interior pixels, no one-channel or one-pixel tails), same
    integers, more instructions.
    `io_in_arena`: the input and output slots are arena tensors (reused once dead; an invoke then
    overwrites its inputs) rather than buffers beside it; `inplace`: element-wise layers and DSP
    depthwise convolutions overwrite an input that dies with them; `workspace_in_arena`: each
    kernel's scratch memory is an arena region for its step (as TFLM's scratch buffers) rather
    than one static workspace beside the arena.
    `patch_grid` ("RxC", "N" or (rows, cols); default none): run the first layers of an image model
    patch by patch up to the feature map that takes the least RAM (`patches.py`), or up to the
    layer `patch_until` names (a source label, e.g. "conv3 (Conv)"), at the cost of computing the
    patches' halos again."""
    if backend not in BACKENDS:
        raise EdgepruneError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    board = load_target(target)
    started = time.perf_counter()
    tvm_target = board.llvm_target() if backend == "llvm" else _c_target(board)
    if kernels not in KERNEL_CHOICES:
        raise EdgepruneError(f"unknown kernels {kernels!r}; choose one of {', '.join(KERNEL_CHOICES)}")
    if weights not in WEIGHT_LAYOUTS:
        raise EdgepruneError(f"unknown weights {weights!r}; choose one of {', '.join(WEIGHT_LAYOUTS)}")
    if sparse not in SPARSE_CHOICES:
        raise EdgepruneError(f"unknown sparse {sparse!r}; choose one of {', '.join(SPARSE_CHOICES)}")
    if optimize not in OPTIMIZE_CHOICES:
        raise EdgepruneError(f"unknown optimize {optimize!r}; choose one of {', '.join(OPTIMIZE_CHOICES)}")
    # The hand-written int8 kernels are LLVM intrinsics: TVM's C code generator cannot print them.
    c_portable = backend == "c" and kernels == "auto" and kernel_family(board.llvm_target()) is not None
    options = passes.PassOptions(rounding=rounding, kernels="portable" if c_portable else kernels, weights=weights,
                                 sparse=sparse, optimize=optimize)
    grid = parse_grid(patch_grid)
    if patch_until is not None and grid is None:
        raise EdgepruneError("--patch-until needs --patch-grid: it says where the patch stage ends")
    graph, plan, imported, edges, notes, write_source = _import(model, input_shape, tvm_target, options)
    if c_portable and any(r.dtype == "int8" for step in plan.steps for r in step.args):
        notes.append("--backend c takes the portable int8 kernels (slower): the DSP and NEON kernels are LLVM "
                     "intrinsics, which only --backend llvm (the default) emits")
    if weights != "auto" and kernels == "auto" and kernel_family(tvm_target) == "neon":
        notes.append("--weights int8 is not honoured on NEON: its convolutions keep int16 weights" if weights == "int8"
                     else "--weights int16 is not honoured on NEON: its dense layers keep int8 weights")
    if sparse == "on" and (kernels != "auto" or kernel_family(tvm_target) != "dsp"):
        notes.append("--sparse on is not honoured: block-sparse weights need the DSP kernels (dense layers on an "
                     "Armv7E-M core with --kernels auto)")
    if optimize == "size" and (kernels != "auto" or kernel_family(tvm_target) != "dsp"):
        notes.append("--optimize size changes nothing here: its smaller variants are the DSP convolution kernels' "
                     "(an Armv7E-M core with --kernels auto)")
    minus_128 = layers_with_minus_128(graph)
    if minus_128:
        notes.append(f"{len(minus_128)} layer(s) hold a -128 weight, outside TFLite's int8 weight range "
                     f"[-127, 127] ({', '.join(minus_128[:4])}): every kernel keeps it exact (NEON dense "
                     "layers then accumulate unpaired)")
    lower = lambda kernels: passes.run_passes(kernels, passes.KERNEL_PASSES, tvm_target, options)  # noqa: E731
    baseline = plan.arena_bytes + plan.io_bytes_outside_arena
    patch = _patch_stage(imported, grid, patch_until, plan, tvm_target, options, lower, inplace) if grid else None
    notes += patch.code.stage.notes if patch else []
    unlowered = _kernel_module(graph, plan)
    kernel_module = lower(unlowered)
    baseline += max(workspace_bytes(kernel_module).values(), default=0)
    regions = {STAGE_KERNEL: patch.plan.arena_bytes} if patch else {}
    kernel_module, per_kernel_workspace = _place(plan, kernel_module, unlowered, lower, io_in_arena, inplace,
                                                 workspace_in_arena, regions)
    # in-place twins may take more than their kernels; a patch stage's arena is in the arena
    workspace = max((n for k, n in per_kernel_workspace.items() if k not in regions), default=0)
    beside = 0 if workspace_in_arena else workspace  # the static workspace beside the arena
    kernel_module = _may_alias(kernel_module, plan)
    if patch:
        kernel_module = tvm.IRModule({**kernel_module.functions, **patch.kernels.functions})
        per_kernel_workspace.update(patch.workspace)
    layers = {gv.name_hint: Layer.of(f) for gv, f in kernel_module.functions.items()}
    arity = {gv.name_hint: len(f.params) for gv, f in kernel_module.functions.items()}
    name = Path(model).stem if isinstance(model, (str, Path)) else type(model).__name__

    with atomic_directory(Path(out)) as folder:
        src = folder / "src"
        src.mkdir()
        kernels_file = _kernel_code(kernel_module, board, backend, src)
        (src / "model.c").write_text(codegen.model_source(plan, arity, beside, *edges, patch=patch and patch.code))
        (src / "edgeprune_model.h").write_text(codegen.model_header(plan, name, beside, *edges))
        source = write_source(folder)
        (src / "ep_model_desc.c").write_text(codegen.model_descriptor(  # for profile.elf
            plan, board.name, content_hash(source), board.clock_hz, beside, *edges))
        firmware.write_project(folder, board, kernels_file, stack_bytes)
        try:
            elf = firmware.build(folder, board)
        except ModelTooLargeError as exc:
            raise ModelTooLargeError(f"{exc}. The model's RAM plan: arena {plan.arena_bytes:,} B, workspace "
                                     f"beside it {beside:,} B, stack {stack_bytes:,} B (--stack-bytes)") from None
        steps = [_step_entry(s, per_kernel_workspace, layers) for s in plan.steps]
        manifest = {
            "model": name,
            "frontend": "tflite" if source.suffix == ".tflite" else "onnx",
            "board": board.name,
            "options": {"backend": backend, "stack_bytes": stack_bytes, "rounding": rounding, "kernels": kernels,
                        "weights": weights, "sparse": sparse, "optimize": optimize, "io_in_arena": io_in_arena, "inplace": inplace,
                        "workspace_in_arena": workspace_in_arena,
                        "patch_grid": f"{grid[0]}x{grid[1]}" if grid else None, "patch_until": patch_until},
            "notes": notes,  # what the front end changed in the model to compile it
            "weights_minus_128": minus_128,  # int8 conv/dense layers with a -128 weight; none: all in [-127, 127]
            "inputs": _tensor_entries(plan.inputs, edges[0]),
            "outputs": _tensor_entries(plan.outputs, edges[1]),
            "steps": steps,
            "memory": _memory_entry(plan, baseline, workspace, beside, stack_bytes, steps,
                                    int(sum(w.nbytes for w in patch.plan.weights)) if patch else 0),
            "sparse": _sparse_entry(steps),
            "patches": patch.entry(layers) if patch else None,
            "elf": memory_breakdown(elf, arity).to_dict(),
            "compile_seconds": round(time.perf_counter() - started, 3),
            "compiler": compiler_fingerprint(),  # the compiler that built it (results are keyed by it)
            "passes": {"graph": [p.name for p in passes.GRAPH_PASSES],
                       "kernel": [p.name for p in passes.KERNEL_PASSES]},
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return CompiledModel(Path(out), manifest)
