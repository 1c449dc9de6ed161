"""int8 kernels for cores with the M-profile Vector Extension (Helium, MVE: the Cortex-M55).

Each kernel is a TIR PrimFunc written for one layer's exact shapes, on 16 int8 lanes: VMLADAVA.S8
multiplies two int8x16 vectors lane by lane and adds the 16 products to a scalar int32, 16 MACs
per instruction (`intrinsics.py`). Dense layers take them (`dense.py`); the core's other layers
keep the DSP kernels (compile/dsp/), which run on the M55's scalar path."""
