"""Defaults of the quantize stage, importable without onnxruntime (the command line reads them)."""
from __future__ import annotations

DEFAULT_SAMPLES = 300  # calibration samples
