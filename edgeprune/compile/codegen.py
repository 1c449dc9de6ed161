"""The generated ahead-of-time driver: weights as const arrays, one static arena, the kernels'
workspace (a region of the arena per step, or one static buffer beside it), an input and an output
slot per tensor (in the arena unless the plan keeps them beside it), and `edgeprune_invoke`
calling the kernels in the planned order with per-layer timing."""
from __future__ import annotations

import dataclasses

import numpy as np

from edgeprune.compile.patch_driver import PatchCode
from edgeprune.compile.patches import STAGE_KERNEL
from edgeprune.compile.plan import Plan, TensorRef

C_TYPES = {
    "float32": "float", "int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t",
    "int32": "int32_t", "int64": "int64_t",
}
BYTES_PER_LINE = 32


def _c_array(name: str, values: np.ndarray, section: str) -> str:
    """A weight array as a string literal of its little-endian bytes (every board is little-endian;
    the kernels take it as `void *`). Float weights keep their exact bit patterns, and gcc reads
    such a literal about 3.5x as fast as an initializer list of numbers (VWW's model.c: 0.84 -> 0.24 s)."""
    data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
    escaped = "\\x" + data.hex("\\").replace("\\", "\\x") if data else ""
    step = 4 * BYTES_PER_LINE
    literal = "\n  ".join(f'"{escaped[i:i + step]}"' for i in range(0, len(escaped), step)) or "{0}"
    return (f'__attribute__((section("{section}"), aligned(16)))\n'
            f"const uint8_t {name}[{max(len(data), 1)}] =  /* {values.size} x {values.dtype} */\n  {literal};\n")


def _slot(plan: Plan, kind: str, index: int) -> str:
    """The C address of an input or output slot: in the arena, or its own buffer beside it."""
    if plan.io_in_arena:
        offsets = plan.input_offsets if kind == "input" else plan.output_offsets
        return f"(void *)(edgeprune_arena + {offsets[index]})"
    return f"(void *)edgeprune_{kind}_buffer_{index}"


def _float_edge(edges: list | None, index: int):
    """The edge quantization where the C API takes or returns float32 (a .tflite's float edge), else None."""
    edge = edges[index] if edges and index < len(edges) else None
    return edge if edge is not None and edge.api_dtype == "float32" else None


def _api_ref(ref: TensorRef, edge) -> TensorRef:
    """The tensor the C API takes or returns: the int8 slot's, or float32 of its shape at a float edge."""
    if edge is None:
        return ref
    return dataclasses.replace(ref, dtype="float32", nbytes=4 * int(np.prod(ref.shape, dtype=np.int64)))


def _api(plan: Plan, input_edges, output_edges) -> tuple[list[TensorRef], list[TensorRef]]:
    return ([_api_ref(r, _float_edge(input_edges, i)) for i, r in enumerate(plan.inputs)],
            [_api_ref(r, _float_edge(output_edges, i)) for i, r in enumerate(plan.outputs)])


def _api_slot(plan: Plan, kind: str, index: int, edges) -> str:
    """The C address of the tensor the API reads or writes: its float buffer at a float edge, else the slot."""
    return f"(void *)edgeprune_{kind}_float_{index}" if _float_edge(edges, index) else _slot(plan, kind, index)


def _arg_expr(plan: Plan, ref: TensorRef) -> str:
    if ref.kind in ("input", "output"):
        return _slot(plan, ref.kind, ref.index)
    if ref.kind == "weight":
        return f"(void *)edgeprune_weight_{ref.index}"
    return f"(void *)(edgeprune_arena + {ref.index})"


def _shape_macro(prefix: str, ref: TensorRef, edge=None) -> list[str]:
    dims = ", ".join(str(d) for d in ref.shape)
    lines = [
        f"#define {prefix}_BYTES {ref.nbytes}u",
        f"#define {prefix}_NDIM {len(ref.shape)}",
        f"#define {prefix}_SHAPE {{{dims}}}",
        f"#define {prefix}_DTYPE \"{ref.dtype}\"",
        f"typedef {C_TYPES[ref.dtype]} {prefix.lower()}_t;",
    ]
    if edge is not None:
        lines += [f"#define {prefix}_SCALE {edge.scale!r}f", f"#define {prefix}_ZERO_POINT {edge.zero_point}"]
    return lines


def _float_wrappers(prefix: str, edge, direction: str) -> list[str]:
    """Optional float conversions for an int8 edge, rounding as the edge says (half to even as
    onnxruntime, or half away from zero as TFLM's QUANTIZE)."""
    name = prefix.lower()
    if direction == "in":
        round_function = "roundf" if edge.rounding == "half_away" else "nearbyintf"
        return [
            f"static inline void {name}_from_float(const float *x, int8_t *q, uint32_t n) {{",
            f"  for (uint32_t i = 0; i < n; ++i) {{",
            f"    float v = {round_function}(x[i] / {prefix}_SCALE) + {prefix}_ZERO_POINT;",
            "    q[i] = (int8_t)(v < -128.0f ? -128 : v > 127.0f ? 127 : v);",
            "  }", "}",
        ]
    return [
        f"static inline void {name}_to_float(const int8_t *q, float *x, uint32_t n) {{",
        f"  for (uint32_t i = 0; i < n; ++i) x[i] = {prefix}_SCALE * (float)(q[i] - {prefix}_ZERO_POINT);",
        "}",
    ]


def model_header(plan: Plan, model_name: str, workspace_bytes: int,
                 input_edges: list | None = None, output_edges: list | None = None) -> str:
    api_inputs, api_outputs = _api(plan, input_edges, output_edges)
    lines = [
        "/* Generated by edgeprune: the model's plain C API. No heap, no TVM runtime. */",
        "#ifndef EDGEPRUNE_MODEL_H", "#define EDGEPRUNE_MODEL_H", "#include <stdint.h>", "#include <string.h>", "",
        f'#define EDGEPRUNE_MODEL_NAME "{model_name}"',
        f"#define EDGEPRUNE_NUM_INPUTS {len(plan.inputs)}",
        f"#define EDGEPRUNE_NUM_OUTPUTS {len(plan.outputs)}",
        f"#define EDGEPRUNE_NUM_LAYERS {len(plan.steps)}",
        f"#define EDGEPRUNE_ARENA_BYTES {plan.arena_bytes}u",
        f"#define EDGEPRUNE_WORKSPACE_BYTES {workspace_bytes}u",
        f"#define EDGEPRUNE_INPUTS_TOTAL_BYTES {sum(r.nbytes for r in api_inputs)}u",
        f"#define EDGEPRUNE_OUTPUTS_TOTAL_BYTES {sum(r.nbytes for r in api_outputs)}u",
        f"#define EDGEPRUNE_IO_IN_ARENA {int(plan.io_in_arena)}",
    ]
    input_edges, output_edges = input_edges or [], output_edges or []
    wrappers: list[str] = []
    for i, ref in enumerate(api_inputs):
        edge = input_edges[i] if i < len(input_edges) else None
        lines += _shape_macro(f"EDGEPRUNE_INPUT_{i}", ref, edge)
        wrappers += _float_wrappers(f"EDGEPRUNE_INPUT_{i}", edge, "in") if edge else []
    for i, ref in enumerate(api_outputs):
        edge = output_edges[i] if i < len(output_edges) else None
        lines += _shape_macro(f"EDGEPRUNE_OUTPUT_{i}", ref, edge)
        wrappers += _float_wrappers(f"EDGEPRUNE_OUTPUT_{i}", edge, "out") if edge else []
    in_params = ", ".join(f"const edgeprune_input_{i}_t *input{i}" for i in range(len(plan.inputs)))
    out_params = ", ".join(f"edgeprune_output_{i}_t *output{i}" for i in range(len(plan.outputs)))
    lines += [
        "",
        "extern const uint32_t edgeprune_input_bytes[EDGEPRUNE_NUM_INPUTS];",
        "extern const uint32_t edgeprune_output_bytes[EDGEPRUNE_NUM_OUTPUTS];",
        "extern const char *const edgeprune_layer_names[EDGEPRUNE_NUM_LAYERS];",
        "/* Timer ticks each layer took in the last inference (see ep_timer_ticks). */",
        "extern uint64_t edgeprune_layer_ticks[EDGEPRUNE_NUM_LAYERS];",
        "extern uint8_t edgeprune_arena[];",
        *[f"extern uint8_t edgeprune_{kind}_buffer_{i}[];" for kind, refs in (("input", plan.inputs),
          ("output", plan.outputs)) if not plan.io_in_arena for i in range(len(refs))],
        "",
        "/* Where the inputs go and the outputs come from: write each input into its slot, call",
        " * edgeprune_invoke(), read each output from its slot. With EDGEPRUNE_IO_IN_ARENA the slots",
        " * are in the arena and their bytes are reused once dead: an invoke overwrites its inputs",
        " * (write them again before the next one), and the outputs stay until the next invoke. */",
        "extern void *const edgeprune_input_slots[EDGEPRUNE_NUM_INPUTS];",
        "extern void *const edgeprune_output_slots[EDGEPRUNE_NUM_OUTPUTS];",
        *[f"static inline edgeprune_input_{i}_t *edgeprune_input_{i}(void) "
          f"{{ return (edgeprune_input_{i}_t *)edgeprune_input_slots[{i}]; }}" for i in range(len(plan.inputs))],
        *[f"static inline const edgeprune_output_{i}_t *edgeprune_output_{i}(void) "
          f"{{ return (const edgeprune_output_{i}_t *)edgeprune_output_slots[{i}]; }}"
          for i in range(len(plan.outputs))],
        "",
        "/* Runs the model on the input slots; 0 on success, -1 if a kernel failed. */",
        "int edgeprune_invoke(void);",
        "",
        "/* Copies the inputs into their slots, runs the model and copies the outputs out. */",
        f"static inline int edgeprune_run({in_params}, {out_params}) {{",
        *[f"  memcpy(edgeprune_input_slots[{i}], input{i}, EDGEPRUNE_INPUT_{i}_BYTES);"
          for i in range(len(plan.inputs))],
        "  int status = edgeprune_invoke();",
        *[f"  memcpy(output{i}, edgeprune_output_slots[{i}], EDGEPRUNE_OUTPUT_{i}_BYTES);"
          for i in range(len(plan.outputs))],
        "  return status;",
        "}",
    ]
    if wrappers:
        lines += ["", "/* Float conversions at the int8 edges, as TFLM's QUANTIZE and DEQUANTIZE (need <math.h>); at",
                  " * a float edge (EDGEPRUNE_*_DTYPE \"float32\") edgeprune_invoke() calls them itself. */",
                  "#include <math.h>", *wrappers]
    lines += ["", "#endif", ""]
    return "\n".join(lines)


def model_source(plan: Plan, kernel_signatures: dict[str, int], workspace_bytes: int,
                 input_edges: list | None = None, output_edges: list | None = None,
                 patch: PatchCode | None = None) -> str:
    """model.c: weights, arena, workspace and the driver; `workspace_bytes` is the static workspace
    beside the arena (none if 0: the kernels take none, or the plan has workspace slots in the arena).
    At a float edge the API's float32 buffer is beside the arena, converted from or into the int8
    slot at the start or end of edgeprune_invoke (outside the layers' timing). A `patch` stage is
    a function of model.c that its step calls with its arena region."""
    api_inputs, api_outputs = _api(plan, input_edges, output_edges)
    parts = [
        "/* Generated by edgeprune: weights, static memory and the driver. */",
        "#include <stddef.h>", "#include <stdint.h>", "",
        '#include "edgeprune_model.h"', '#include "ep_board.h"', '#include "ep_workspace.h"', "",
    ]
    for name, arity in sorted(kernel_signatures.items()):
        params = ", ".join(["void *"] * arity)
        parts.append(f"int32_t {name}({params});")
    parts.append("")
    weights = [(f"edgeprune_weight_{i}", w) for i, w in enumerate(plan.weights)]
    for name, values in weights + (patch.weight_arrays() if patch else []):
        parts.append(_c_array(name, values, ".edgeprune_weights"))
    if not plan.io_in_arena:
        parts += [f"uint8_t edgeprune_{kind}_buffer_{i}[{max(ref.nbytes, 1)}] __attribute__((aligned(16)));"
                  for kind, refs in (("input", plan.inputs), ("output", plan.outputs)) for i, ref in enumerate(refs)]
    parts += [f"float edgeprune_{kind}_float_{i}[{ref.nbytes // 4}] __attribute__((aligned(16)));"
              for kind, refs, edges in (("input", plan.inputs, input_edges), ("output", plan.outputs, output_edges))
              for i, ref in enumerate(refs) if _float_edge(edges, i)]
    parts += [
        f"uint8_t edgeprune_arena[{max(plan.arena_bytes, 16)}] __attribute__((aligned(16)));",
        *([f"uint8_t edgeprune_workspace[{workspace_bytes}] __attribute__((aligned(16)));"] if workspace_bytes else []),
        "const uint32_t edgeprune_input_bytes[EDGEPRUNE_NUM_INPUTS] = {"
        + ", ".join(f"{r.nbytes}u" for r in api_inputs) + "};",
        "const uint32_t edgeprune_output_bytes[EDGEPRUNE_NUM_OUTPUTS] = {"
        + ", ".join(f"{r.nbytes}u" for r in api_outputs) + "};",
        "const char *const edgeprune_layer_names[EDGEPRUNE_NUM_LAYERS] = {"
        + ", ".join(f'"{s.kernel}"' for s in plan.steps) + "};",
        "uint64_t edgeprune_layer_ticks[EDGEPRUNE_NUM_LAYERS];",
        "void *const edgeprune_input_slots[EDGEPRUNE_NUM_INPUTS] = {"
        + ", ".join(_api_slot(plan, "input", i, input_edges) for i in range(len(plan.inputs))) + "};",
        "void *const edgeprune_output_slots[EDGEPRUNE_NUM_OUTPUTS] = {"
        + ", ".join(_api_slot(plan, "output", i, output_edges) for i in range(len(plan.outputs))) + "};",
        "",
        *(patch.function() if patch else []),
        "int edgeprune_invoke(void) {",
        *[f"  edgeprune_input_{i}_from_float(edgeprune_input_float_{i}, (int8_t *){_slot(plan, 'input', i)}, "
          f"{ref.nbytes}u);" for i, ref in enumerate(plan.inputs) if _float_edge(input_edges, i)],
        "  uint64_t before = ep_timer_ticks(), after;",
        *(["  ep_workspace_init(edgeprune_workspace, sizeof edgeprune_workspace);"] if workspace_bytes else []),
    ]
    for i, step in enumerate(plan.steps):
        args = ", ".join(_arg_expr(plan, a) for a in step.args)
        if step.kernel == STAGE_KERNEL:
            args += f", edgeprune_arena + {plan.workspace_slots[i][0]}"
        elif i in plan.workspace_slots:
            offset, nbytes = plan.workspace_slots[i]
            parts.append(f"  ep_workspace_init(edgeprune_arena + {offset}, {nbytes}u);")
        parts += [
            f"  if ({step.kernel}({args}) != 0) return -1;",
            f"  after = ep_timer_ticks(); edgeprune_layer_ticks[{i}] = after - before; before = after;",
        ]
    parts += [f"  edgeprune_output_{i}_to_float((const int8_t *){_slot(plan, 'output', i)}, edgeprune_output_float_{i}, "
              f"{ref.nbytes}u);" for i, ref in enumerate(plan.outputs) if _float_edge(output_edges, i)]
    parts += ["  return 0;", "}", ""]
    return "\n".join(parts)


_WIRE_DTYPES = {"int8": "EP_DTYPE_INT8", "uint8": "EP_DTYPE_UINT8", "int16": "EP_DTYPE_INT16",
                "int32": "EP_DTYPE_INT32", "float32": "EP_DTYPE_FLOAT32"}


def model_descriptor(plan: Plan, board: str, model_id: str, tick_hz: int, workspace_bytes: int,
                     input_edges: list | None = None, output_edges: list | None = None) -> str:
    """ep_model_desc.c: `ep_model_get()` for the profiling protocol (targets/runtime/ep_model.h),
    filled from the generated tables. The protocol reads outputs from their slots; it writes inputs
    into their slots, or, with the inputs in the arena (an invoke overwrites them), into buffers of
    their own that `prepare` copies into the slots before each timed invoke."""
    parts = ["/* Generated by edgeprune: the model as the profiling protocol sees it. */",
             "#include <stdint.h>", "#include <string.h>", "",
             '#include "edgeprune_model.h"', '#include "ep_model.h"', ""]
    tables = []
    api_inputs, api_outputs = _api(plan, input_edges, output_edges)
    for kind, refs, edges in (("input", api_inputs, input_edges or []),
                              ("output", api_outputs, output_edges or [])):
        entries = []
        for i, ref in enumerate(refs):
            edge = edges[i] if i < len(edges) else None
            floating = _float_edge(edges, i) is not None
            staged = kind == "input" and plan.io_in_arena and not floating  # a float buffer is beside the arena
            scale, zero_point = (edge.scale, edge.zero_point) if edge is not None and not floating else (1.0, 0)
            parts.append(f"static const uint32_t ep_{kind}_{i}_shape[] = {{"
                         f"{', '.join(f'{d}u' for d in ref.shape) or '1u'}}};")
            if staged:
                parts.append(f"static uint8_t ep_{kind}_{i}_data[{max(ref.nbytes, 1)}] __attribute__((aligned(16)));")
            data = f"ep_{kind}_{i}_data" if staged else _api_slot(plan, kind, i, edges)
            entries.append(f'  {{"{kind}{i}", {_WIRE_DTYPES[ref.dtype]}, {len(ref.shape)}, '
                           f"ep_{kind}_{i}_shape, {ref.nbytes}u, {float(scale)!r}f, {int(zero_point)}, {data}}},")
        tables += [f"static const ep_tensor ep_{kind}s[] = {{", *entries, "};"]
    prepare = "NULL"
    if plan.io_in_arena:
        prepare = "ep_prepare"
        tables += ["", "static void ep_prepare(void) {",
                   *[f"  memcpy(edgeprune_input_slots[{i}], ep_input_{i}_data, {ref.nbytes}u);"
                     for i, ref in enumerate(plan.inputs) if not _float_edge(input_edges, i)], "}"]
    parts += ["", *tables, "",
              "static int ep_invoke(void) { return edgeprune_invoke(); }", "",
              "static const ep_model ep_model_desc = {",
              f'  "{board}", "{model_id}", {tick_hz}u, EDGEPRUNE_NUM_INPUTS, EDGEPRUNE_NUM_OUTPUTS,',
              "  ep_inputs, ep_outputs, EDGEPRUNE_ARENA_BYTES, EDGEPRUNE_WORKSPACE_BYTES,",
              f"  EDGEPRUNE_NUM_LAYERS, edgeprune_layer_names, edgeprune_layer_ticks, ep_invoke, {prepare}}};", "",
              "const ep_model *ep_model_get(void) { return &ep_model_desc; }", ""]
    return "\n".join(parts)
