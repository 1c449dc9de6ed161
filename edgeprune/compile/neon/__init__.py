"""int8 kernels for Cortex-A cores with Advanced SIMD (NEON): aarch64 (A53, A72, ...) and armv7 (A7).

Each kernel is a TIR PrimFunc written for one layer's exact shapes, on vectors of eight output
pixels: an int16 input vector times one weight broadcast from a lane, accumulated into int32
(`SMLAL`/`SMLAL2` by element; `VMLAL.S16` by scalar on armv7), so the activations stay NCHW
in the arena, as everywhere else in the compiler. Convolutions are a GEMM (`gemm.py`) between
weights packed at compile time in blocks of output channels and an int16 im2col of the input
(`conv.py`); depthwise convolutions slide along the rows of zero-point-padded channel planes
(`depthwise.py`). Every kernel requantizes whole vectors with TFLM's arithmetic
(`int8_kernels.Requantize`), so outputs equal the portable kernels' bit for bit."""
from edgeprune.compile import tvmscript

tvmscript.install()  # the kernels expand many TVMScript macros: see tvmscript.py
