"""int8 kernels for cores with the M-profile Vector Extension (Helium, MVE: the Cortex-M55).

VMLADAVA.S8 multiplies two int8x16 vectors lane by lane and adds the 16 products to a scalar
int32: 16 MACs per instruction (`intrinsics.py`). Dense layers have a kernel of their own
(`dense.py`); convolutions run the DSP convolution kernel (dsp/conv.py) with int8 columns and this
package's GEMM micro-kernel (`gemm.py`); depthwise convolutions take the NEON depthwise kernel's
vector code, which LLVM lowers to MVE (neon/depthwise.py, isa "mve"). With --weights int16 the
dense layers and convolutions keep the DSP kernels, which run on the M55's scalar path."""
