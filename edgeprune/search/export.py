"""Export the chosen candidate: pruned `.pt`, deployable ONNX and the compiled firmware folder."""
from __future__ import annotations

import shutil
from pathlib import Path

from torch import nn

from edgeprune._atomic import atomic_directory, write_text_atomic
from edgeprune.models.data import Dataset
from edgeprune.prune import serialize
from edgeprune.search.candidate import Settings, build
from edgeprune.search.measure import compile_for
from edgeprune.search.results import Candidate


def export_candidate(chosen: Candidate, base: nn.Module, input_shape: tuple[int, ...],
                     ds: Dataset, settings: Settings, label: str, out: Path) -> Path:
    """Rebuild `chosen` (the pipeline is seeded, so it is the same model) into `out`:
    model.pt, model.int8.onnx (or model.onnx for fp32), firmware/ and README.txt."""
    with atomic_directory(out) as folder:
        built = build(base, input_shape, ds, chosen.ratios, settings, folder / "scratch")
        onnx_path = folder / built.onnx_path.name
        shutil.move(built.onnx_path, onnx_path)
        shutil.rmtree(folder / "scratch")
        serialize.save(folder / "model.pt", built.model, input_shape, label,
                       extra={"ratios": chosen.ratios, "trial": chosen.number})
        compile_for(onnx_path, settings.device, folder / "firmware")
        same = "the same as" if abs(built.accuracy - chosen.accuracy) < 1e-9 else "DIFFERENT from"
        write_text_atomic(folder / "README.txt", (
            f"trial {chosen.number} of the search on {label}\n"
            f"ratios: {chosen.ratios}\nchannels: {chosen.channels}\n"
            f"validation top-1 {built.accuracy:.4f} ({same} the trial's {chosen.accuracy:.4f})\n"
            f"instructions per inference ({settings.device}): {chosen.instructions:,.0f}\n"))
    return out.resolve()
