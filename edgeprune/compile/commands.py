"""`edgeprune compile`."""
from __future__ import annotations

import argparse
import collections
from pathlib import Path

from edgeprune._modelargs import parse_shape
from edgeprune.compile.defaults import (BACKENDS, DEFAULT_STACK_BYTES, KERNEL_CHOICES, OPTIMIZE_CHOICES, ROUNDINGS,
                                        SPARSE_CHOICES, WEIGHT_LAYOUTS)
from edgeprune.errors import EdgepruneError


def _compile(args: argparse.Namespace) -> int:
    from edgeprune.compile import passes
    from edgeprune.compile.api import compile_model

    if args.list_passes:
        print("graph passes (Relax):\n" + passes.describe(passes.GRAPH_PASSES))
        print("\nkernel passes (TIR):\n" + passes.describe(passes.KERNEL_PASSES))
        return 0
    if args.model is None:
        raise EdgepruneError("name a model: an int8 .tflite file, an .onnx file or a zoo model "
                             "(edgeprune compile --help)")
    compiled = compile_model(args.model, args.target, args.output, backend=args.backend,
                             input_shape=args.input_shape, stack_bytes=args.stack_bytes, rounding=args.rounding,
                             kernels=args.kernels, weights=args.weights, sparse=args.sparse,
                             optimize=args.optimize,
                             io_in_arena=not args.io_outside_arena,
                             inplace=not args.no_inplace,
                             workspace_in_arena=not args.workspace_outside_arena,
                             patch_grid=args.patch_grid, patch_until=args.patch_until)
    m = compiled.manifest
    mem = m["memory"]
    print(f"compiled {m['model']} for {m['board']} in {m['compile_seconds']:.1f} s -> {compiled.path}")
    for note in m["notes"]:
        print(f"  note      {note}")
    print(f"  kernels   {len(m['steps'])} calls ({m['options']['backend']} backend)")
    dsp, portable = _layer_kernels(m["steps"])
    if dsp or portable:
        print(f"  int8      {dsp} conv/dense layers on {_family(m['steps'])} kernels ({_weight_layouts(m['steps'])})"
              + (f"; on portable kernels (slower): {', '.join(portable)}" if portable else "")
              + f"; optimized for {m['options']['optimize']}")
    print(f"  weights   {mem['weights_bytes']:>10,} B")
    if m["sparse"]["layers"]:
        print(_sparse_summary(m["sparse"], m["options"]["sparse"]))
    print(f"  arena     {mem['arena_bytes']:>10,} B  (liveness bound {mem['liveness_bound_bytes']:,} B)")
    print(_arena_saving(m))
    if mem["inplace_layers"]:
        print(f"  in place  {_in_place(mem['inplace_layers'])}")
    if m.get("patches"):
        print(_patch_summary(m["patches"]))
    print(f"  workspace {mem['workspace_bytes']:>10,} B  (the most one kernel takes; "
          f"{'in the arena' if m['options']['workspace_in_arena'] else 'beside the arena'})")
    print(elf_summary(m["elf"], m["board"]))
    print(f"  firmware  {compiled.elf}")
    return 0


def _arena_saving(manifest: dict) -> str:
    """What the arena options save, against arena, inputs, outputs and workspace all apart."""
    mem, options = manifest["memory"], manifest["options"]
    io = ("inputs/outputs in the arena" if options["io_in_arena"]
          else f"inputs/outputs beside it {mem['io_outside_arena_bytes']:,} B")
    inplace = (f"{len(mem['inplace_steps'])} layers in place" if options["inplace"] else "in-place layers off")
    workspace = "workspace in the arena" if options["workspace_in_arena"] else "workspace beside it"
    return (f"            {io}, {inplace}, {workspace}: saves {mem['saved_bytes']:,} B of "
            f"{mem['baseline_bytes']:,} B (arena + inputs + outputs + workspace, all apart)")


def _patch_summary(patches: dict) -> str:
    """The patch stage: grid, where it ends, one patch's arena and the MACs computed again."""
    rows, cols = patches["grid"]
    return (f"  patches   {rows}x{cols} of {'x'.join(map(str, patches['patch_output'][1:]))} pixels up to "
            f"{patches['ends_at']} ({len(patches['steps'])} kernel call{'s' if len(patches['steps']) > 1 else ''} a patch), patch arena "
            f"{patches['patch_arena_bytes']:,} B; halos computed again: +{100 * patches['recompute']:.0f} % of the "
            f"stage's MACs\n            estimated live bytes at the peak {patches['estimated_peak_bytes']:,} B, "
            f"{patches['estimated_peak_bytes_without']:,} B without patches")


def _in_place(layers: list[str]) -> str:
    """The layers that overwrite an input, each once with its count, e.g. `add_int8 x3, conv 3x3 ...`."""
    counts = collections.Counter(layers)
    return ", ".join(f"{layer} x{n}" if n > 1 else layer for layer, n in counts.items())


def _layer_kernels(steps: list[dict]) -> tuple[int, list[str]]:
    """How many int8 conv/dense steps run a hand-written kernel, and the names of those that do not."""
    int8 = [s for s in steps if s["kernel"].startswith(("conv2d_int8", "depthwise_conv2d_int8", "dense_int8"))]
    return sum("layer" in s for s in int8), sorted({s["kernel"] for s in int8 if "layer" not in s})


def _sparse_summary(sparse: dict, mode: str) -> str:
    """The dense layers' sparse-or-dense choice (--sparse) and the weight bytes it saves."""
    lines = [f"  sparse    {sparse['sparse_layers']} of {len(sparse['layers'])} dense layers block-sparse "
             f"(--sparse {mode}), weights {sparse['saved_bytes']:,} B smaller than dense"]
    lines += [f"            {layer['description']}: {layer['choice']}" for layer in sparse["layers"]]
    return "\n".join(lines)


def _family(steps: list[dict]) -> str:
    """Which hand-written kernels a build's layers run: DSP (Cortex-M) or NEON (Cortex-A)."""
    return "NEON" if any("_neon" in s["kernel"] for s in steps) else "DSP"


def _weight_layouts(steps: list[dict]) -> str:
    """Weight bytes per storage layout of the hand-written kernels' layers, e.g. 'int16 weights 44,032 B'."""
    totals: dict[str, int] = {}
    for step in (s for s in steps if "layer" in s):
        totals[step["layer"]["weights"]] = totals.get(step["layer"]["weights"], 0) + step["layer"]["weight_bytes"]
    return ", ".join(f"{layout} weights {count:,} B" for layout, count in sorted(totals.items()))


def elf_summary(elf: dict, board: str) -> str:
    """Flash and RAM by category, each against what the board has."""
    from edgeprune.targets import load_target

    flash, ram, target = elf["flash"], elf["ram"], load_target(board)
    return (f"  flash     {elf['flash_total']:>10,} B  ({_share(elf['flash_total'], target.flash.length)}; "
            f"weights {flash['weights']:,}, kernels {flash['kernels']:,}, "
            f"runtime {flash['runtime']:,}, libc {flash['libc']:,})\n"
            f"  RAM       {elf['ram_total']:>10,} B  ({_share(elf['ram_total'], target.ram.length)}; "
            f"arena {ram['arena']:,}, workspace {ram['workspace']:,}, "
            f"stack {ram['stack']:,}, runtime {ram['runtime']:,})")


def _share(used: int, capacity: int) -> str:
    return f"{100 * used / capacity:.0f} % of the board's {capacity:,} B"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compile", help="compile a model into a firmware folder for a board",
        description="Compile an int8 .tflite file, an ONNX file or a zoo model (see `edgeprune zoo`) with TVM into a "
                    "self-contained folder: C driver, kernels, board runtime, Makefile, firmware.elf, manifest.json.",
    )
    p.add_argument("model", nargs="?", help="an int8 .tflite file, an .onnx file or a zoo model name")
    p.add_argument("--target", "-t", default="mps2-an386", help="board name (edgeprune targets); default mps2-an386")
    p.add_argument("--output", "-o", type=Path, default=Path("build/model"), help="output folder (replaced atomically)")
    p.add_argument("--backend", choices=BACKENDS, default="llvm", help="kernels as an LLVM object (default) or C source")
    p.add_argument("--input-shape", type=parse_shape, help="input shape, e.g. 1,3,32,32: of a torch model, or the sizes "
                   "of an ONNX input's symbolic axes (default: a symbolic batch axis is 1)")
    p.add_argument("--stack-bytes", type=int, default=DEFAULT_STACK_BYTES, help="stack reserved on the device")
    p.add_argument("--rounding", choices=ROUNDINGS, default="double",
                   help="int8 requantize as TFLM: double (its default) or single (TFLITE_SINGLE_ROUNDING)")
    p.add_argument("--kernels", choices=KERNEL_CHOICES, default="auto",
                   help="int8 kernels: auto (hand-written kernels on cores that have the DSP extension: M4, M7, M33, "
                   "M55; or NEON: the Cortex-A boards) "
                   "or portable (the TE kernels on every core; slower)")
    p.add_argument("--weights", choices=WEIGHT_LAYOUTS, default="auto",
                   help="how the DSP kernels store weights: int16 (widened at compile time: fastest, 2 bytes per "
                   "weight), int8 (1 byte, widened in the loop), or auto (default: int16 for convolutions, int8 "
                   "for dense layers, which read each weight once; int8 for both on the M55's Helium)")
    p.add_argument("--sparse", choices=SPARSE_CHOICES, default="auto",
                   help="block-sparse weights for the DSP kernels' dense layers: auto (default: per layer, where "
                   "they store fewer bytes at no more estimated instructions), on (every dense layer) or off")
    p.add_argument("--optimize", choices=OPTIMIZE_CHOICES, default="speed",
                   help="the DSP convolution kernels: speed (default: 8-group loop bodies, a path without bounds tests "
                   "for interior pixels) or size (smaller kernel code, more instructions, the same integers; as -Os)")
    p.add_argument("--io-outside-arena", action="store_true",
                   help="keep the input and output slots beside the arena (they survive an invoke) instead of in it "
                   "(default: in the arena, as TFLM, their bytes reused once dead)")
    p.add_argument("--no-inplace", action="store_true",
                   help="no in-place layers (by default element-wise layers and depthwise convolutions overwrite an "
                   "input that dies with them)")
    p.add_argument("--workspace-outside-arena", action="store_true",
                   help="one static workspace beside the arena for the kernels' scratch memory (default: each "
                   "kernel's scratch is an arena region for its step, as TFLM's scratch buffers)")
    p.add_argument("--patch-grid", metavar="RxC",
                   help="run an image model's first layers patch by patch in an RxC grid (e.g. 4x4, or 3 for 3x3), up "
                   "to the feature map that leaves the least RAM: less RAM, more instructions (the patches' halos are "
                   "computed again); default off")
    p.add_argument("--patch-until", metavar="LAYER",
                   help="with --patch-grid: the layer the patch stage ends at, by its source name as the compile "
                   "summary and the manifest show it, e.g. 'conv3 (Conv)'")
    p.add_argument("--list-passes", action="store_true", help="print the compiler's passes and exit")
    p.set_defaults(handler=_compile)
