"""Quantize stage: int8 post-training quantization to onnxruntime's QDQ format, with a report (`edgeprune.quantize(...)`)."""
from edgeprune._stage import make_stage

make_stage(__name__, "edgeprune.quantize.api", "quantize", ())
