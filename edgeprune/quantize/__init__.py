"""Quantize stage: int8 post-training quantization to onnxruntime's QDQ format, with a report."""
from edgeprune.quantize.api import quantize
from edgeprune.quantize.settings import METHODS

__all__ = ["METHODS", "quantize"]
