"""Patch-based execution of an image model's first stage: the regions a patch needs, the choice
of the stage, the errors, and on QEMU the same integers as the build without patches."""
from __future__ import annotations

import numpy as np
import pytest

from edgeprune.compile.patches import NoPatchStageError, Region, _starts, parse_grid
from edgeprune.errors import EdgepruneError


def test_a_convolution_needs_its_window_and_stride_back_from_the_output_region():
    out = Region(0, 0, 4, 3, (1, 1))
    # 3x3, stride 2, padding 1: output rows 0..3 read input rows -1..7, 9 rows; columns -1..5.
    assert out.window((3, 3), (2, 2), (1, 1), (1, 1)) == Region(-1, -1, 9, 7, (2, 2))
    # dilation 2 widens the window to 5 pixels
    assert out.window((3, 3), (1, 1), (0, 0), (2, 2)) == Region(0, 0, 8, 7, (1, 1))
    assert Region(-1, 0, 5, 5, (2, 2)).union(Region(0, 2, 5, 5, (2, 2))) == Region(-1, 0, 6, 7, (2, 2))


def test_patches_cover_the_map_and_the_last_one_moves_back_when_the_grid_does_not_divide_it():
    assert _starts(16, 4) == [0, 4, 8, 12]
    assert _starts(5, 2) == [0, 2]  # two patches of 3 rows: rows 2 computed twice
    assert parse_grid("4x2") == (4, 2) and parse_grid("3") == (3, 3) and parse_grid(None) is None
    for bad in ("1", "2y2", "0x4"):
        with pytest.raises(EdgepruneError, match="--patch-grid"):
            parse_grid(bad)


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    """An int8 image model whose first stage has every case a patch meets: a padded stem, a strided
    depthwise layer, a residual block (a value read by a 3x3 convolution and by the add), a strided
    convolution to a 9x9 map that a 2x2 grid does not divide; a 1x1 head after it. The stem's
    36x36x16 output is most of its RAM, as in MLPerf Tiny's image models."""
    import torch
    from torch import nn

    from edgeprune.quantize import quantize

    class Stem(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.dw = nn.Conv2d(3, 16, 3, 1, 1), nn.Conv2d(16, 16, 3, 2, 1, groups=16)
            self.pw, self.res = nn.Conv2d(16, 8, 1), nn.Conv2d(8, 8, 3, 1, 1)
            self.down, self.head = nn.Conv2d(8, 16, 3, 2, 1), nn.Conv2d(16, 4, 1)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            y = torch.relu(self.pw(torch.relu(self.dw(x))))
            y = torch.relu(y + self.res(y))
            return self.head(torch.relu(self.down(y)))

    torch.manual_seed(0)
    calibration = np.random.default_rng(0).uniform(-1, 1, (16, 3, 36, 36)).astype(np.float32)
    out = tmp_path_factory.mktemp("patches") / "stem.int8.onnx"
    return quantize(Stem().eval(), calibration, out, input_shape=(1, 3, 36, 36), write_report=False).output


@pytest.mark.qemu
def test_a_patched_stage_computes_the_same_integers_on_qemu(image_model, compiled, host_reference):
    from edgeprune.profile.run import run

    whole = compiled(image_model)
    cut = [s["source"] for s in whole.manifest["steps"]][-2]  # the strided convolution before the head
    patched = compiled(image_model, patch_grid="2x2", patch_until=cut)
    patches = patched.manifest["patches"]
    assert patches["ends_at"] == cut and patches["rows"] == patches["cols"] == [0, 4]  # row 4 computed twice
    assert patches["patch_output"] == [16, 5, 5] and patches["recompute"] > 0
    assert patches["estimated_peak_bytes"] < patches["estimated_peak_bytes_without"]
    assert patched.manifest["steps"][0]["kernel"] == "edgeprune_patch_stage"
    assert len(patched.manifest["steps"]) == 2  # the stage and the head
    holds = [b["holds"] for b in patched.manifest["memory"]["arena"]["buffers"]]
    assert ["0 patch arena"] in holds  # the memory report names the stage's region
    # The stage's weights are the patch kernels' (counted as weights), the full-size ones are gone.
    weights = [m.manifest["elf"]["flash"]["weights"] for m in (whole, patched)]
    assert weights[1] == patched.manifest["memory"]["weights_bytes"] and abs(weights[1] - weights[0]) < 0.02 * weights[0]
    x = np.random.default_rng(3).integers(-128, 128, (1, 3, 36, 36)).astype(np.int8)
    expected = host_reference(whole, [x])[0]
    assert expected.shape == (1, 4, 9, 9)
    assert np.array_equal(run(patched, [x]).measurement.outputs[0], expected)


def test_a_stage_can_end_only_where_the_rest_reads_one_feature_map(image_model, compiled):
    with pytest.raises(EdgepruneError, match=r"--patch-until 'nowhere': a patch stage can end at .*\(Conv\)"):
        compiled(image_model, patch_grid="2x2", patch_until="nowhere")
    with pytest.raises(EdgepruneError, match="--patch-until needs --patch-grid"):
        compiled(image_model, patch_until="nowhere")


def test_a_model_without_an_image_stage_says_so(tmp_path):
    from edgeprune.compile.api import compile_model
    from tests.onnx_op_models import MODELS, quantized

    with pytest.raises(NoPatchStageError, match="no stage of this model can run in patches"):
        compile_model(quantized(MODELS["Gemm"][""]()), "mps2-an386", tmp_path / "gemm", patch_grid="2x2")
    assert not (tmp_path / "gemm").exists()


def test_a_search_candidate_over_the_ram_budget_is_compiled_in_patches(image_model, compiled, tmp_path):
    from edgeprune.search.measure import compile_for

    whole = compiled(image_model)
    budget = whole.manifest["elf"]["ram_total"] - 1
    fitted = compile_for(image_model, "qemu:mps2-an386", tmp_path / "firmware", max_ram=budget)
    assert fitted.path == (tmp_path / "firmware").resolve() and not (tmp_path / "firmware-2x2").exists()
    assert fitted.manifest["options"]["patch_grid"] in ("2x2", "3x3", "4x4")
    assert fitted.manifest["elf"]["ram_total"] <= budget
    # Without a budget, or within it, no patches.
    assert compile_for(image_model, "qemu:mps2-an386", tmp_path / "plain", max_ram=budget + 1).manifest["patches"] is None
