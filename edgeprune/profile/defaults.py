"""The profile stage's defaults, importable without its heavy dependencies (the command line reads them)."""
from __future__ import annotations

DEFAULT_DEVICE = "qemu:mps2-an386"  # the embedded default: QEMU's Cortex-M4 board, no hardware needed
