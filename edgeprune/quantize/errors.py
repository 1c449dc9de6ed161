"""Errors of the quantize stage (the CLI prints them and exits 2)."""
from edgeprune.errors import EdgepruneError


class QuantizeError(EdgepruneError):
    """A model or option the quantizer cannot work with."""


class CalibrationDataError(QuantizeError):
    """Calibration or evaluation samples that do not fit the model input."""
