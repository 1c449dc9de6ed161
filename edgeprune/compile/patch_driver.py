"""The generated C of a patch stage (`patches.py`): a function that, for each patch of the grid,
copies the patch's input region out of the stage's input (the zero point where it lies outside
the image), runs one patch's plan in its own arena (the stage step's workspace), fills what each
layer wrote outside the image with that tensor's zero point, and copies the patch's output into
the stage's output."""
from __future__ import annotations

from dataclasses import dataclass

from edgeprune.compile.patches import STAGE_KERNEL, PatchStage, PatchTensor
from edgeprune.compile.plan import Plan, TensorRef

# Region copies between an NCHW int8 image (height x width) and a patch region (rows x cols)
# whose corner is at (top, left) of the image; the fill sets what lies outside the image to `zero`.
_HELPERS = r"""
static void ep_patch_fill(int8_t *patch, int channels, int height, int width,
                          int rows, int cols, int top, int left, int8_t zero) {
  int first = left < 0 ? -left : 0, last = left + cols > width ? width - left : cols;
  if (top >= 0 && top + rows <= height && first == 0 && last == cols) return;
  for (int c = 0; c < channels; ++c)
    for (int r = 0; r < rows; ++r, patch += cols) {
      int y = top + r;
      if (y < 0 || y >= height || first >= last) { memset(patch, zero, (size_t)cols); continue; }
      memset(patch, zero, (size_t)first);
      memset(patch + last, zero, (size_t)(cols - last));
    }
}

static void ep_patch_in(const int8_t *image, int8_t *patch, int channels, int height, int width,
                        int rows, int cols, int top, int left, int8_t zero) {
  int first = left < 0 ? -left : 0, last = left + cols > width ? width - left : cols;
  int8_t *row = patch;
  for (int c = 0; c < channels; ++c)
    for (int r = 0; r < rows; ++r, row += cols)
      if (top + r >= 0 && top + r < height && first < last)
        memcpy(row + first, image + ((size_t)c * height + top + r) * width + left + first, (size_t)(last - first));
  ep_patch_fill(patch, channels, height, width, rows, cols, top, left, zero);
}

static void ep_patch_out(const int8_t *patch, int8_t *image, int channels, int height, int width,
                         int rows, int cols, int top, int left) {
  for (int c = 0; c < channels; ++c)
    for (int r = 0; r < rows; ++r, patch += cols)
      memcpy(image + ((size_t)c * height + top + r) * width + left, patch, (size_t)cols);
}
"""


@dataclass
class PatchCode:
    """What the driver needs of a patch stage: the stage, one patch's placed plan, and per step of
    that plan the tensor whose outside-the-image part it fills (`patch_plan.step_fills`)."""

    stage: PatchStage
    plan: Plan
    fills: list[PatchTensor | None]

    def weight_arrays(self) -> list[tuple[str, object]]:
        return [(f"edgeprune_weight_patch_{i}", w) for i, w in enumerate(self.plan.weights)]

    def _arg(self, ref: TensorRef) -> str:
        if ref.kind == "weight":
            return f"(void *)edgeprune_weight_patch_{ref.index}"
        if ref.kind == "input":
            return f"(void *)(base + {self.plan.input_offsets[ref.index]})"
        if ref.kind == "output":
            return f"(void *)(base + {self.plan.output_offsets[ref.index]})"
        return f"(void *)(base + {ref.index})"

    def function(self) -> list[str]:
        """The C of the stage: `STAGE_KERNEL(input, output, base)`, base the patch arena."""
        stage, x, y = self.stage, self.stage.input, self.stage.output
        lines = [_HELPERS,
                 f"static const int16_t ep_patch_rows[{len(stage.rows)}] = {{{', '.join(map(str, stage.rows))}}};",
                 f"static const int16_t ep_patch_cols[{len(stage.cols)}] = {{{', '.join(map(str, stage.cols))}}};",
                 "",
                 f"static int32_t {STAGE_KERNEL}(void *x, void *y, uint8_t *base) {{",
                 f"  for (int i = 0; i < {len(stage.rows)}; ++i)",
                 f"    for (int j = 0; j < {len(stage.cols)}; ++j) {{",
                 "      int row = ep_patch_rows[i], col = ep_patch_cols[j];",
                 f"      ep_patch_in((const int8_t *)x, (int8_t *){self._arg(self.plan.inputs[0])}, "
                 f"{_geometry(x)}, {_corner(x)}, {x.zero_point});"]
        for t, (step, fill) in enumerate(zip(self.plan.steps, self.fills)):
            if t in self.plan.workspace_slots:
                offset, nbytes = self.plan.workspace_slots[t]
                lines.append(f"      ep_workspace_init(base + {offset}, {nbytes}u);")
            lines.append(f"      if ({step.kernel}({', '.join(self._arg(a) for a in step.args)}) != 0) return -1;")
            if fill is not None:
                lines.append(f"      ep_patch_fill((int8_t *){self._arg(step.args[-1])}, {_geometry(fill)}, "
                             f"{_corner(fill)}, {fill.zero_point});")
        lines += [f"      ep_patch_out((const int8_t *){self._arg(self.plan.outputs[0])}, (int8_t *)y, "
                  f"{y.channels}, {y.height}, {y.width}, {y.region.height}, {y.region.width}, row, col);",
                  "    }", "  return 0;", "}", ""]
        return lines


def _geometry(tensor: PatchTensor) -> str:
    return f"{tensor.channels}, {tensor.height}, {tensor.width}, {tensor.region.height}, {tensor.region.width}"


def _corner(tensor: PatchTensor) -> str:
    """The C expressions of the region's corner for the patch at output (row, col)."""
    (top, left), (down, across) = tensor.origin(0, 0), tensor.region.stride
    return f"{top} + row * {down}, {left} + col * {across}"
