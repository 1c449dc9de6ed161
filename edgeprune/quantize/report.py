"""What quantization did to a model: float vs int8 accuracy, agreement, per-tensor SQNR."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TensorSqnr:
    """SQNR in dB of one quantized tensor (+inf: exact)."""

    tensor: str
    kind: str
    layer: str
    sqnr_db: float


@dataclass
class QuantizeReport:
    """The quantized model's path and how it compares with the float model (tensors worst first)."""

    model: str
    output: str
    method: str
    settings: dict[str, Any]
    calibration: str
    calibration_samples: int
    evaluation: str
    evaluation_samples: int
    float_accuracy: float | None  # None when the outputs are not class scores of the data's labels
    int8_accuracy: float | None
    agreement: float
    float_nodes: list[str] = field(default_factory=list)  # compute nodes left in float
    tensors: list[TensorSqnr] = field(default_factory=list)
    metric: str = "top-1"  # what float_accuracy and int8_accuracy measure (a task's metric)

    @property
    def accuracy_drop(self) -> float | None:
        """Float minus int8 score (top-1 accuracy or the task's metric), in percentage points."""
        if self.float_accuracy is None or self.int8_accuracy is None:
            return None
        return 100.0 * (self.float_accuracy - self.int8_accuracy)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; an infinite SQNR (no noise) becomes null."""
        result = asdict(self)
        result["accuracy_drop_points"] = self.accuracy_drop
        for row in result["tensors"]:
            row["sqnr_db"] = row["sqnr_db"] if math.isfinite(row["sqnr_db"]) else None
        return result

    def summary(self) -> str:
        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{100 * value:.2f}%"
        scored = (f"{self.metric} by {self.evaluation}" if self.evaluation.startswith("task.evaluate")
                  else f"{self.metric} on {self.evaluation_samples} samples of {self.evaluation}")
        return (f"{self.model} -> {self.output} ({self.method}, {self.calibration_samples} "
                f"calibration samples of {self.calibration})\n"
                f"{scored}: float "
                f"{pct(self.float_accuracy)}, int8 {pct(self.int8_accuracy)}; "
                f"agreement {pct(self.agreement)}\n"
                f"left in float: {', '.join(self.float_nodes) or 'nothing'}")

    def table(self, limit: int | None = None) -> str:
        """SQNR per quantized tensor, worst first (the first `limit` rows)."""
        rows = self.tensors[:limit]
        width = max([len("tensor"), *(len(r.tensor) for r in rows)])
        layer_width = max([len("layer"), *(len(r.layer) for r in rows)])
        lines = [f"{'SQNR dB':>8}  {'kind':<10}  {'tensor':<{width}}  {'layer':<{layer_width}}"]
        lines += [f"{r.sqnr_db:8.1f}  {r.kind:<10}  {r.tensor:<{width}}  {r.layer:<{layer_width}}"
                  for r in rows]
        if limit is not None and len(self.tensors) > limit:
            lines.append(f"... {len(self.tensors) - limit} more tensors in the JSON report")
        return "\n".join(line.rstrip() for line in lines)
