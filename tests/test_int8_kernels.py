"""The hand-written int8 kernels, table-driven on QEMU: for cores with the DSP extension
(compile/dsp/, on mps2-an386, a Cortex-M4, and on mps2-an500, a Cortex-M7, whose convolutions
read int16 weights side by side rather than by pairs: int8.pairs_pay), for the M55's Helium (compile/mve/ and the NEON
depthwise kernel on MVE, on mps3-an547; int16 weights there keep the DSP kernels) and for Cortex-A cores with NEON (compile/neon/, on
cortex-a53 under qemu-aarch64, cortex-a76 with SDOT and cortex-a7 under qemu-arm).

Each case is a small model whose layers cover one corner of the kernels: odd and even channel
counts (GEMM tiles of 2 with a one-channel tail), 1 to 3 input channels, strides 1 and 2,
padding, dilation, non-square kernels, a depthwise multiplier of 2, depthwise kernels that are
not 3 wide or are dilated, pixel counts that leave a single pixel or a partial vector of eight,
and dense layers with reduction lengths that are not multiples of 4 (8, 16: NEON's chunks) and
output counts that are not multiples of 8 (NEON's tiles), once with -128 weights that two
int8 x int8 products in one int16 lane would overflow on, and convolutions that overwrite their
input (odd widths, fewer output channels, windows reaching rows up or pixels left), and
reductions of up to 16 groups of four (unrolled) and beyond (a pass of 64 groups and the rest
unrolled) with an odd pixel count. The device must equal the portable kernels of a host build of the same integer graph bit
for bit, for random and saturating inputs."""
import numpy as np
import onnx
import pytest
import torch
import tvm
from torch import nn

from edgeprune.cli import main
from edgeprune.compile import passes
from edgeprune.compile.api import compile_model
from edgeprune.compile.conv_shape import ConvShape
from edgeprune.compile.int8 import has_dsp, has_mve, kernel_family
from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.neon.depthwise import depthwise_conv2d
from edgeprune.compile.plan import align
from edgeprune.compile.schedule import SCHEDULED
from edgeprune.compile.workspace import kernel_workspace_bytes
from edgeprune.profile.run import run
from edgeprune.quantize import quantize
from edgeprune.targets import load_target

# One worker compiles every configuration once (the fixture is module-scoped; split over workers,
# each would compile them again).
pytestmark = pytest.mark.xdist_group("int8-kernels")

CASES = {
    "regular": ((1, 1, 9, 11), lambda: nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(),                      # 1 input channel, odd output channels
        nn.Conv2d(3, 5, 3, stride=2, padding=1), nn.ReLU(),            # strided, 3 input channels
        nn.Conv2d(5, 4, 3, padding=2, dilation=2), nn.ReLU6(),         # dilated
        nn.Conv2d(4, 7, (2, 3), padding=(0, 1)),                       # non-square, 4x6 pixels
        nn.Conv2d(7, 2, 1), nn.ReLU(),                                 # K = 7: weights stationary, 24 pixels
        nn.Conv2d(2, 6, 2, stride=2, padding=1),                       # K = 8, strided, padded: rows of 4 pixels
        nn.Flatten(), nn.Linear(6 * 3 * 4, 9))),                       # dense, K = 168, 9 outputs
    "depthwise": ((1, 2, 8, 7), lambda: nn.Sequential(
        nn.Conv2d(2, 6, 1), nn.ReLU(),                                 # pointwise, K = 2
        nn.Conv2d(6, 12, 3, padding=1, groups=6), nn.ReLU(),           # depthwise, multiplier 2
        nn.Conv2d(12, 12, 3, stride=2, padding=1, groups=12),          # depthwise, stride 2
        nn.Conv2d(12, 12, (3, 5), padding=(1, 2), groups=12), nn.ReLU(),  # depthwise, 5 wide
        nn.Conv2d(12, 12, 3, padding=2, dilation=2, groups=12),       # depthwise, dilated
        nn.Conv2d(12, 12, (2, 3), padding=1, groups=12),               # depthwise, 2 rows: one word of middle weights
        nn.Flatten(), nn.Linear(12 * 5 * 4, 10), nn.ReLU(),             # dense
        nn.Linear(10, 5))),                                            # dense, K = 10 (not a multiple of 4)
    "wide": ((1, 3, 6, 10), lambda: nn.Sequential(
        nn.Conv2d(3, 11, 3, padding=1), nn.ReLU(),                     # a NEON block of 8 channels and a tail of 3
        nn.Conv2d(11, 20, 1),                                          # 60 pixels: 7 vectors of 8 and a tail of 4; K = 11
        nn.Conv2d(20, 2, 1), nn.ReLU(),
        nn.Conv2d(2, 4, (1, 3), padding=(0, 1)),                       # K = 6: weights stationary, rows of 8 + 2 pixels
        nn.Flatten(), nn.Linear(4 * 6 * 10, 4))),
    "dense": ((1, 37), lambda: nn.Sequential(
        nn.Linear(37, 19), nn.ReLU(),                                  # K = 2 chunks of 16 and 5; 2 tiles of 8 and 3
        nn.Linear(19, 8), nn.ReLU6(),                                  # K = 16 and 3; one whole tile
        nn.Linear(8, 3))),                                             # K = 8: no whole chunk
    "inplace": ((1, 6, 7, 9), lambda: nn.Sequential(                    # on the DSP kernels, every conv runs in place
        nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),                      # odd width: pixel pairs straddle rows
        nn.Conv2d(6, 4, (3, 5), padding=(1, 2)),                       # fewer outputs, reaching 2 pixels left
        nn.Conv2d(4, 4, 5, padding=4, dilation=2), nn.ReLU(),          # reaching 4 rows up
        nn.Conv2d(4, 3, 1),                                            # pointwise: no ring
        nn.Conv2d(3, 3, (1, 3), padding=(0, 1)),                       # its own row only; 63 pixels (a single one left)
        nn.Flatten(), nn.Linear(3 * 7 * 9, 5))),
    "deep": ((1, 24, 3, 5), lambda: nn.Sequential(                     # DSP reductions past one unrolled tile
        nn.Conv2d(24, 32, 1), nn.ReLU(),                               # K = 24: unrolled
        nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(),                    # K = 288: a 64-group pass and 8 more, in place; 15 pixels
        nn.Conv2d(16, 64, 1), nn.ReLU(),                               # K = 16: unrolled
        nn.Conv2d(64, 9, 1),                                           # K = 64: unrolled, its column at an offset; 9 channels
        nn.Flatten(), nn.Linear(9 * 15, 4))),
}
CASES["dense-128"] = CASES["dense"]  # with -128 weights (`_put_minus_128`)
IN_PLACE_CONVS = {"inplace": 5, "regular": 2, "deep": 2, "wide": 1}  # the DSP steps that overwrite their input (with a ring or not)


CONFIGURATIONS = ([(name, "auto", "mps2-an386") for name in sorted(CASES)]
                  + [("regular", "int8", "mps2-an386"), ("depthwise", "int16", "mps2-an386"),
                     ("regular", "auto", "mps2-an386", "size"), ("deep", "auto", "mps2-an500")]
                  + [(name, "auto", board) for board in ("cortex-a53", "cortex-a76", "cortex-a7")
                     for name in sorted(CASES) if name not in ("dense-128", "inplace", "deep")]
                  + [("dense-128", "auto", board) for board in ("cortex-a53", "cortex-a7")]
                  + [(name, "auto", "mps3-an547") for name in ("dense", "dense-128", "depthwise", "regular")]
                  + [("dense", "int16", "mps3-an547"), ("inplace", "auto", "mps3-an547"),
                     ("regular", "auto", "mps3-an547", "size")])
FAMILY = {"mps2-an386": "dsp", "mps2-an500": "dsp", "mps3-an547": "dsp", "cortex-a53": "neon", "cortex-a76": "neon", "cortex-a7": "neon"}
HELIUM_FAMILY = {"mps3-an547": "mve"}  # the dense and convolution kernels where they are not FAMILY's


@pytest.fixture(scope="session")  # xdist may run another module in between: keep it alive
def builds(tmp_path_factory):
    """build(name, weights, board, optimize="speed"): the case compiled once in this module (and
    quantized once, whatever the board)."""
    quantized, compiled = {}, {}

    def build(name: str, weights: str, board: str, optimize: str = "speed"):
        if name not in quantized:
            shape, make = CASES[name]
            torch.manual_seed(0)
            path = tmp_path_factory.mktemp(name) / "m.int8.onnx"
            calibration = np.random.default_rng(1).normal(size=(64, *shape[1:])).astype(np.float32)
            quantize(make().eval(), calibration, path, input_shape=shape, write_report=False)
            if name.endswith("-128"):
                _put_minus_128(path)
            quantized[name] = path
        key = (name, weights, board, optimize)
        if key not in compiled:
            out = quantized[name].parent / "-".join(key[1:])
            compiled[key] = compile_model(quantized[name], board, out, weights=weights, optimize=optimize)
        return compiled[key]
    return build


@pytest.fixture(scope="module", params=CONFIGURATIONS, ids=lambda p: "-".join(p))
def case(request, builds):
    """A case compiled for a board with the default weight layouts ("auto") or all weights int16 or int8,
    optimized for speed (the default) or for size."""
    return builds(*request.param)


def _put_minus_128(path) -> None:
    """Three -128 weights in the first dense layer, so that output 0 pairs two of them (reduction
    elements 0 and 8, whichever way the weight is stored): with an all -128 input their products
    sum to 32768, one past int16."""
    model = onnx.load(path)
    weight = next(t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2)
    values = onnx.numpy_helper.to_array(weight).copy()
    values[0, 0] = values[0, 8] = values[8, 0] = -128
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(model, path)


def test_the_m4_has_the_dsp_extension_and_the_m3_has_not():
    assert has_dsp(load_target("mps2-an386").llvm_target())
    assert not has_dsp(load_target("mps2-an385").llvm_target())


def test_only_the_m55_has_helium():
    assert [has_mve(load_target(b).llvm_target()) for b in ("mps3-an547", "mps2-an505", "mps2-an386")] == [
        True, False, False]


def test_cortex_a_cores_take_the_neon_kernels():
    boards = ("cortex-a53", "cortex-a72", "cortex-a55", "cortex-a76", "cortex-a7")
    assert [kernel_family(load_target(b).llvm_target()) for b in boards] == ["neon"] * 5
    assert kernel_family(None) is None


def test_weights_are_stored_as_the_kernels_read_them(case):
    """Convolutions: SDOT cores keep int8 weights, other NEON cores widen them to int16. Dense
    layers keep int8 weights on NEON. On the M4 the --weights choice holds (auto: int16 for
    convolutions, int8 for dense layers); on the M55 too, but auto is int8 for both (Helium)."""
    board, asked = case.manifest["board"], case.manifest["options"]["weights"]

    def layouts(*kinds):
        return {s["layer"]["weights"] for s in case.manifest["steps"] if s.get("layer", {}).get("kind") in kinds}

    auto = "int8" if board == "mps3-an547" else "int16"
    conv = {"cortex-a76": "int8", "cortex-a53": "int16", "cortex-a7": "int16"}.get(board, auto if asked == "auto" else asked)
    dense = "int8" if FAMILY[board] == "neon" or asked == "auto" else asked
    assert layouts("dense") == {dense}  # every case ends in dense layers
    assert layouts("conv", "pointwise") <= {conv}


def test_every_convolution_runs_a_hand_written_kernel(case):
    """On the M55, depthwise convolutions and the dense layers and convolutions with int8 weights
    take the MVE kernels, those with int16 weights the DSP ones."""
    board = case.manifest["board"]
    family, helium = FAMILY[board], HELIUM_FAMILY.get(board, FAMILY[board])
    weighted = helium if case.manifest["options"]["weights"] == "auto" else family
    kernels = [step["kernel"] for step in case.manifest["steps"]]
    assert [k for k in kernels if k.startswith(("conv2d", "depthwise", "dense"))]
    assert all(f"_{helium}" in k for k in kernels if k.startswith("depthwise"))
    assert all(f"_{weighted}" in k for k in kernels if k.startswith(("conv2d", "dense")))


def test_dsp_convolutions_run_in_place_where_each_output_pixel_lands_on_its_input(case):
    """Stride 1, output as large as the input in pixels and no larger in bytes; the ones whose
    windows reach above or left of their pixel call their in-place twin (a ring of input rows)."""
    steps, inplace = case.manifest["steps"], case.manifest["memory"]["inplace_steps"]
    convs = [t for t in inplace if steps[t]["kernel"].startswith("conv2d")]
    if FAMILY[case.manifest["board"]] != "dsp":
        assert convs == []
        return
    name = case.path.parent.name.rstrip("0123456789")
    assert len(convs) == IN_PLACE_CONVS.get(name, 0)
    for t in convs:
        x, y = steps[t]["args"][0], steps[t]["args"][-1]
        assert x["index"] == y["index"] and x["shape"][2:] == y["shape"][2:] and y["nbytes"] <= x["nbytes"]
        assert steps[t]["kernel"].endswith("_inplace") == (steps[t]["layer"]["kind"] != "pointwise")


@pytest.mark.qemu
def test_kernels_equal_the_portable_kernels_bit_for_bit(case, host_reference):
    shape = case.manifest["inputs"][0]["shape"]
    rng = np.random.default_rng(7)
    inputs = [x.astype(np.int8) for x in (rng.integers(-128, 128, shape), np.full(shape, 127), np.full(shape, -128),
                                          np.where(rng.random(shape) < 0.5, -128, 127))]
    outputs = [run(case, [x]).measurement.outputs[0] for x in inputs]
    for x, device in zip(inputs, outputs):
        assert np.array_equal(device, host_reference(case, [x])[0])
    assert len(np.unique(outputs[0])) > 1  # not saturated


def test_a_dense_layer_with_a_minus_128_weight_says_it_pairs_no_products(case):
    """On NEON, SMULL + SMLAL2 would overflow int16 there; SDOT (the A76) sums into int32 and the
    DSP kernels multiply int16 pairs into int32: neither needs such care."""
    dense = [s["layer"]["description"] for s in case.manifest["steps"] if s.get("layer", {}).get("kind") == "dense"]
    unpaired = [d for d in dense if d.endswith(", unpaired (a -128 weight)")]
    minus_128 = case.path.parent.name.startswith("dense-128") and FAMILY[case.manifest["board"]] == "neon"
    assert unpaired == (dense[:1] if minus_128 else [])


def test_the_manifest_says_which_layers_hold_a_minus_128_weight(case):
    """edgeprune's quantizer keeps int8 weights in [-127, 127] (TFLite's int8 spec); an imported
    model's -128 weight is named in the manifest and its notes."""
    patched = case.path.parent.name.startswith("dense-128")
    assert case.manifest["weights_minus_128"] == (["dense 19x37"] if patched else [])
    assert any("-128 weight" in note for note in case.manifest["notes"]) == patched


def test_size_mode_takes_less_kernel_code_than_speed(case, builds):
    """--optimize size: the same weights, less kernel code than the default build of the case
    (its bit-exactness is test_kernels_equal_the_portable_kernels_bit_for_bit's)."""
    options = case.manifest["options"]
    if options["optimize"] != "size":
        return
    speed = builds(case.path.parent.name.rstrip("0123456789"), options["weights"], case.manifest["board"])
    assert case.manifest["elf"]["flash"]["weights"] == speed.manifest["elf"]["flash"]["weights"]
    assert case.manifest["elf"]["flash"]["kernels"] < speed.manifest["elf"]["flash"]["kernels"]


@pytest.mark.qemu
def test_run_names_each_layer_by_what_it_computes(case, capsys):
    assert main(["run", str(case.path)]) == 0
    printed = capsys.readouterr().out
    layers = [step["layer"]["description"] for step in case.manifest["steps"] if "layer" in step]
    assert layers and all(layer in printed for layer in layers)  # e.g. "conv 3x3 s2 3->5 @5x6"


def test_an_int8_weight_layout_that_neon_cannot_honour_is_said(tmp_path):
    shape, build = CASES["wide"]
    torch.manual_seed(0)
    calibration = np.random.default_rng(1).normal(size=(16, *shape[1:])).astype(np.float32)
    quantized = quantize(build().eval(), calibration, tmp_path / "m.int8.onnx", input_shape=shape,
                         write_report=False).output
    compiled = compile_model(quantized, "cortex-a53", tmp_path / "out", weights="int8")
    assert "--weights int8 is not honoured on NEON: its convolutions keep int16 weights" in compiled.manifest["notes"]
    assert {(s["layer"]["kind"], s["layer"]["weights"]) for s in compiled.manifest["steps"] if "layer" in s} == {
        ("conv", "int16"), ("pointwise", "int16"), ("dense", "int8")}


@pytest.mark.parametrize("board, isa, plane_bytes", [("mps3-an547", "mve", 50 * 50),
                                                     ("cortex-a53", "aarch64", 50 * 50 * 2)])
def test_the_m55_depthwise_kernel_keeps_its_padded_plane_int8(board, isa, plane_bytes):
    # VWW's first depthwise layer (48x48, 8 channels): a 50 x 50 padded plane, int8 on MVE (which
    # widens as it loads), int16 on NEON; the kernel's whole workspace is that plane, aligned.
    shape = ConvShape(8, 48, 48, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    kernel = depthwise_conv2d(shape, 1, Requantize(-128, -128, 127), -128, isa).with_attrs(
        {"global_symbol": "k", SCHEDULED: True})
    lowered = passes.run_passes(tvm.IRModule({"k": kernel}), passes.KERNEL_PASSES, load_target(board).llvm_target())
    assert kernel_workspace_bytes(lowered["k"]) == align(plane_bytes)
