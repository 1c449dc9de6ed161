"""Errors edgeprune raises on bad input; the CLI prints their message and exits non-zero."""


class EdgepruneError(Exception):
    """Base of every error that is the user's input, not a bug: the message says what to do."""


class UnknownTargetError(EdgepruneError):
    """A board or core name that no file in targets/ describes."""


class UnsupportedOpError(EdgepruneError):
    """A model operator that the compiler cannot lower."""


class ToolchainMissingError(EdgepruneError):
    """An external program (cross compiler, QEMU) is not installed."""


class ModelTooLargeError(EdgepruneError):
    """The compiled model does not fit the board's flash or RAM."""


class DeviceError(EdgepruneError):
    """A device (QEMU or a board) did not answer, answered garbage or timed out."""


class ModelFileError(EdgepruneError):
    """A model file that is missing, empty, truncated or not ONNX."""


class UnsupportedModelError(EdgepruneError):
    """A model the compiler cannot take as it is (a float64 tensor, an axis left symbolic)."""


class TaskError(EdgepruneError):
    """A task that cannot be used as it is: the message names the attribute and the problem."""


class CallableError(TaskError):
    """A user callable (finetune, evaluate) that raised or returned something unusable; carries
    the traceback, so that a search can record it with the trial it failed."""

    def __init__(self, message: str, trace: str = "") -> None:
        super().__init__(message)
        self.trace = trace
