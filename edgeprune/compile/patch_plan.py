"""The execution plan with a patch stage: the full model's steps of the stage become one step
(`patches.STAGE_KERNEL`) that reads the stage's input and writes its output, and whose workspace
is the arena of one patch's plan."""
from __future__ import annotations

import dataclasses
from typing import Callable

from edgeprune.compile.patches import STAGE_KERNEL, PatchStage, PatchTensor
from edgeprune.compile.plan import Plan, Step, tensor_key
from edgeprune.errors import EdgepruneError


def _labels(step: Step) -> set[str]:
    return set(step.source.split(", ")) if step.source else set()


def _live(plan: Plan) -> list[int]:
    """Arena bytes live at each step of the full model's `plan` (placed as `build_plan` does: input
    and output beside the arena)."""
    return [sum(b.nbytes for b in plan.buffers if b.first <= t <= b.last) for t in range(len(plan.steps))]


def rest_peak(plan: Plan) -> Callable[[str], int]:
    """For `patches.choose_stage`: the most arena bytes live at once after the step computing a
    labelled value, in the full model's `plan`."""
    live = _live(plan)

    def after(label: str) -> int:
        steps = [t for t, step in enumerate(plan.steps) if label in _labels(step)]
        return max(live[steps[-1] + 1:], default=0) if steps else 0
    return after


def whole_peak(plan: Plan) -> int:
    """For `patches.choose_stage`: the most bytes the full model's `plan` holds at once, with its
    input in memory over the first step (as a patch stage's estimate counts it)."""
    live = _live(plan)
    return max([live[0] + sum(r.nbytes for r in plan.inputs), *live[1:]], default=0)


def replace_stage(plan: Plan, stage: PatchStage) -> None:
    """Replace, in place, the steps of `plan` that compute the stage by one step running its
    patches; the weights only they read go."""
    inside = [t for t, step in enumerate(plan.steps) if _labels(step) and _labels(step) <= stage.labels]
    mixed = [step.source for step in plan.steps if _labels(step) & stage.labels and not _labels(step) <= stage.labels]
    if not inside or mixed or inside != list(range(inside[0], inside[-1] + 1)):
        raise EdgepruneError(f"internal error: the layers of the patch stage ({stage.describe()}) are not "
                             f"consecutive steps of the plan{f' ({mixed[0]} is half in it)' if mixed else ''}")
    first, end = inside[0], inside[-1] + 1
    steps = plan.steps[first:end]
    written = {tensor_key(step.args[-1]) for step in steps}
    output = next(step.args[-1] for step in reversed(steps) if stage.output.label in _labels(step))
    read = {tensor_key(r): r for step in steps for r in step.args[:-1] if r.kind != "weight" and tensor_key(r) not in written}
    later = {tensor_key(r) for step in plan.steps[end:] for r in step.args} | {("output", i) for i in range(len(plan.outputs))}
    if len(read) != 1 or (written - {tensor_key(output)}) & later:
        raise EdgepruneError(f"internal error: the patch stage ({stage.describe()}) does not read one tensor "
                             "and write one that the rest reads alone")
    stage_step = Step(STAGE_KERNEL, [next(iter(read.values())), output], stage.describe())
    plan.steps[first:end] = [stage_step]
    _drop_unused_weights(plan)


def _drop_unused_weights(plan: Plan) -> None:
    used = sorted({r.index for step in plan.steps for r in step.args if r.kind == "weight"})
    number = {old: new for new, old in enumerate(used)}
    plan.weights = [plan.weights[i] for i in used]
    for step in plan.steps:
        step.args = [dataclasses.replace(r, index=number[r.index]) if r.kind == "weight" else r for r in step.args]


def step_fills(patch_plan: Plan, stage: PatchStage) -> list[PatchTensor | None]:
    """Per step of one patch's plan, the int8 tensor it writes whose region may reach outside the
    image (the driver then fills that part with the zero point), else None."""
    fills = []
    for step in patch_plan.steps:
        found = [stage.tensors[label] for label in _labels(step) if label in stage.tensors]
        out = step.args[-1]
        tensor = found[-1] if found else None
        if tensor is not None and tuple(out.shape) != (1, tensor.channels, tensor.region.height, tensor.region.width):
            raise EdgepruneError(f"internal error: patch step {step.kernel} writes {out.shape}, not {tensor.label}'s "
                                 f"region {tensor.region}")
        crossing = tensor is not None and out.kind != "output" and tensor.crosses_border(stage.rows, stage.cols)
        fills.append(tensor if crossing else None)
    return fills
