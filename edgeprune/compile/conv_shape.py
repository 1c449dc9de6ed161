"""A convolution's static shape, shared by the hand-written kernels (`dsp/`, `neon/`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvShape:
    """A convolution's static shape (batch 1). padding: top, left, bottom, right."""

    channels_in: int
    height: int
    width: int
    channels_out: int
    kernel: tuple[int, int]
    strides: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]

    def out_size(self, axis: int) -> int:
        """Output rows (axis 0) or columns (axis 1)."""
        size = (self.height, self.width)[axis] + self.padding[axis] + self.padding[axis + 2]
        return (size - self.dilation[axis] * (self.kernel[axis] - 1) - 1) // self.strides[axis] + 1

    @property
    def out_height(self) -> int:
        return self.out_size(0)

    @property
    def out_width(self) -> int:
        return self.out_size(1)

    @property
    def depth(self) -> int:
        """Reduction length: input channels x kernel rows x kernel columns."""
        return self.channels_in * self.kernel[0] * self.kernel[1]

    def interior(self, axis: int) -> tuple[int, int]:
        """The output rows (axis 0) or columns (axis 1) whose window needs no padding: [first, last]."""
        size, before = (self.height, self.padding[0]) if axis == 0 else (self.width, self.padding[1])
        reach = self.dilation[axis] * (self.kernel[axis] - 1)
        stride = self.strides[axis]
        return -(-before // stride), (size - 1 - reach + before) // stride
