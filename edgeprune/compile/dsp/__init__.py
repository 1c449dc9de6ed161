"""int8 kernels for cores with the Armv7E-M DSP extension (Cortex-M4, M7, M33, M55's scalar path).

Each kernel is a TIR PrimFunc written for one layer's exact shapes, built from the DSP
instructions (`intrinsics.py`): SMLAD multiplies two int16 pairs and accumulates both products,
two MACs per instruction. Convolutions and dense layers are a GEMM (`gemm.py`) between the
layer's weights, packed at compile time (`packing.py`), and a column of int16 inputs built per
output pixel (`conv.py`, `dense.py`); depthwise convolutions slide over rows of a channel plane
(`depthwise.py`). Activations stay NCHW in the arena, as everywhere else in the compiler."""
from edgeprune.compile import tvmscript

tvmscript.install()  # the kernels expand many TVMScript macros: see tvmscript.py
