"""The compile options' choices and defaults, importable without TVM (the command line reads them)."""
from __future__ import annotations

BACKENDS = ("llvm", "c")
DEFAULT_STACK_BYTES = 8 * 1024
ROUNDINGS = ("double", "single")  # TFLM's default, and its TFLITE_SINGLE_ROUNDING variant
# int8 kernels: "auto" takes the hand-written DSP or NEON kernels on cores that have them, "portable" the TE ones
KERNEL_CHOICES = ("auto", "portable")
# how the DSP kernels store weights: auto (int16 for convolutions, which reuse every weight at
# each pixel; int8 for dense layers, which read each once), int16 everywhere, or int8 everywhere
WEIGHT_LAYOUTS = ("auto", "int16", "int8")
# int8 dense layers on the DSP kernels: block-sparse weights per layer where they win (auto), always (on), never (off)
SPARSE_CHOICES = ("auto", "off", "on")
# the DSP convolution kernels: fastest (speed), or smaller code at more instructions, same integers (size, like -Os)
OPTIMIZE_CHOICES = ("speed", "size")
