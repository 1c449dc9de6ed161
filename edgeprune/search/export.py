"""Export the chosen candidate: pruned `.pt`, deployable ONNX and the compiled firmware folder."""
from __future__ import annotations

import shutil
from pathlib import Path

from edgeprune._atomic import atomic_directory, write_text_atomic
from edgeprune.models import zoo
from edgeprune.prune import serialize
from edgeprune.search.candidate import build
from edgeprune.search.measure import compile_for
from edgeprune.search.results import Candidate
from edgeprune.search.settings import Settings
from edgeprune.task import Task, metric_label


def export_candidate(chosen: Candidate, task: Task, settings: Settings, out: Path) -> Path:
    """Rebuild `chosen` (the pipeline is seeded, so it is the same model when the task's finetune
    is) into `out`: model.pt, model.int8.onnx (or model.onnx for fp32), firmware/ and README.txt."""
    label, input_shape = task.name, task.input_shape
    with atomic_directory(out) as folder:
        built = build(task, chosen.ratios, settings, folder / "scratch")
        onnx_path = folder / built.onnx_path.name
        shutil.move(built.onnx_path, onnx_path)
        shutil.rmtree(folder / "scratch")
        serialize.save(folder / "model.pt", built.model, input_shape,
                       label if label in zoo.ZOO else None,
                       extra={"ratios": chosen.ratios, "trial": chosen.number})
        compile_for(onnx_path, settings.device, folder / "firmware", patch_grid=chosen.patch_grid)
        same = "the same as" if abs(built.accuracy - chosen.accuracy) < 1e-9 else "DIFFERENT from"
        write_text_atomic(folder / "README.txt", (
            f"trial {chosen.number} of the search on {label}\n"
            f"ratios: {chosen.ratios}\nchannels: {chosen.channels}\n"
            f"validation {metric_label(task.metric_name)} {built.accuracy:.4f} ({same} the trial's "
            f"{chosen.accuracy:.4f})\n"
            f"instructions per inference ({settings.device}): {chosen.instructions:,.0f}\n"))
    return out.resolve()
