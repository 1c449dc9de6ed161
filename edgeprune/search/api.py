"""`edgeprune.search(...)`: hardware-aware per-layer sparsity search with Optuna, every candidate
pruned, finetuned, quantized, compiled and measured on the device."""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import optuna
from tqdm.auto import tqdm

from edgeprune._atomic import write_text_atomic
from edgeprune.errors import EdgepruneError
from edgeprune.models.train import torch_threads
from edgeprune.profile.store import default_store_path
from edgeprune.search import report, space, storage as studies
from edgeprune.search.base import load_base
from edgeprune.search.budgets import Budgets
from edgeprune.search.export import export_candidate
from edgeprune.search.errors import SearchError
from edgeprune.search.measure import device_has_dsp, device_unit
from edgeprune.search.rescore import check_rescorable, rescore, uniform_neighbour
from edgeprune.search.results import Candidate, SearchResult, candidate, choose, pareto_front
from edgeprune.search.runner import Runner
from edgeprune.search.settings import RUN, SETTINGS, Settings
from edgeprune.task import Task, metric_label


def outcome(candidates: list[Candidate], budgets: Budgets, metric: str = "accuracy",
            unit: str = "instructions") -> tuple[Candidate | None, str]:
    """The chosen candidate and a one-line verdict (what is closest when nothing fits)."""
    feasible = [c for c in candidates if c.feasible]
    chosen = choose(feasible)
    if chosen:
        return chosen, (f"chosen: trial {chosen.number}, {report.score(chosen.accuracy, metric)} "
                        f"{metric_label(metric)}, "
                        f"{chosen.instructions:,.0f} {unit}, flash {chosen.flash_bytes:,} B, "
                        f"RAM {chosen.ram_bytes:,} B")
    if not candidates:
        return None, "no candidate was measured"
    fastest = min(candidates, key=lambda c: c.instructions)
    return None, (f"no candidate meets the budgets ({budgets.describe(unit)}) in {len(candidates)} "
                  f"measured candidates; the closest reach {fastest.instructions:,.0f} "
                  f"{unit}, flash {min(c.flash_bytes for c in candidates):,} B, RAM "
                  f"{min(c.ram_bytes for c in candidates):,} B; relax a budget or prune further "
                  f"(larger max ratio)")


def search(model: str | os.PathLike | Task, *, device: str = SETTINGS.device, trials: int = RUN.trials,
           out: str | os.PathLike = "build/search", max_latency: float | None = None,
           max_flash: int | None = None, max_ram: int | None = None,
           storage: str | None = None, study: str | None = None, resume: bool = False,
           sampler: str = RUN.sampler, seed: int | None = None, uniform: Sequence[float] = RUN.uniform,
           precision: str = SETTINGS.precision, round_to: int = SETTINGS.round_to,
           max_ratio: float = SETTINGS.max_ratio, step: float = SETTINGS.step,
           finetune_epochs: int = SETTINGS.finetune_epochs, distill: float = SETTINGS.distill,
           train_epochs: int = RUN.train_epochs, threads: int = RUN.threads,
           export: bool = True, progress: bool = True, trust_pickle: bool = False,
           input_shape: tuple[int, ...] | None = None, rescore_folds: int = 0,
           store: str | os.PathLike | None = None, flash: str | None = None) -> SearchResult:
    """Search per-layer pruning ratios of `model` (a Task or task reference `FILE.py:NAME`; a zoo
    name, trained here on its default data first; or a `.pt` saved by edgeprune) for `trials`
    finished trials in total (all workers of the study). Defaults: `settings.Settings` and
    `settings.RunDefaults`.

    Objectives: the task's metric on validation (max; default top-1) and latency measured on
    `device` (min; a device URL of `edgeprune profile`, in its unit: instructions on QEMU, cycles
    on a serial board, ns over SSH); latency, flash and RAM budgets are constraints. A trial whose task callable
    (finetune, evaluate) fails is recorded as failed with its traceback; the study goes on. torch
    trains with `threads` threads (default 1: the candidates are small models, and on a shared
    machine more threads mostly spin). Writes
    OUT/report.md, pareto.png, search.json and the chosen candidate in OUT/chosen (model.pt,
    model.int8.onnx, firmware/). Each measurement is a record in the results `store` (default:
    `edgeprune profile`'s, `profile.store.default_store_path`), where a candidate whose architecture
    was measured on the device before (by a search or a profile) is found instead of measured.
    `flash`: a serial: or socket: device's command loading each candidate's firmware (`{elf}` its
    path; `profile.devices.SerialDevice`). `rescore_folds` K >= 2 re-scores the chosen candidate and its uniform
    neighbour on K folds of the task's data outside validation (`search.rescore`), into the report.
    """
    if trials < 1:
        raise EdgepruneError(f"trials must be at least 1, got {trials}")
    out = Path(out).resolve()  # the emulator runs in another working directory
    settings = replace(SETTINGS, device=device, precision=precision, round_to=round_to,
                       max_ratio=max_ratio, step=step, finetune_epochs=finetune_epochs, distill=distill)
    budgets = Budgets(max_latency, max_flash, max_ram)
    device_options = {} if flash is None else {"flash": flash}
    unit, method = device_unit(device, **device_options)
    with torch_threads(threads):
        task = load_base(model, out, train_epochs, trust_pickle, input_shape)
    if rescore_folds:
        check_rescorable(task, rescore_folds)
    out.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    groups = space.groups(task.model, task.input_shape)
    the_study = _open_study(task, groups, settings, budgets, url, study or f"{task.name}-{device.replace(':', '-')}",
                            sampler, seed, uniform, trials, train_epochs, resume)
    runner = Runner(the_study, task, settings, budgets, Path(store) if store else default_store_path(), groups,
                    out / "work", device_has_dsp(device), unit, device_options)
    bar = tqdm(total=trials, desc="search", unit="trial", disable=not progress)
    try:
        with torch_threads(threads):
            studies.run_until(runner.study, runner.objective, trials, lambda: runner.progress(bar, trials))
    finally:
        bar.close()
    result = collect(runner.study, task.name, url, sampler, settings, budgets, task.metric_name, unit, method)
    result.validation_samples = 0 if task.evaluate else task.validation_samples
    result.task_finetune = task.finetune is not None
    if export and result.chosen:
        with torch_threads(threads):
            result.exported = export_candidate(result.chosen, task, settings, out / "chosen")
    if rescore_folds and result.chosen:
        neighbour = uniform_neighbour(result.chosen, result.uniform)
        if neighbour is None:
            raise SearchError("--rescore-folds: no uniform candidate was measured to compare the chosen one with")
        with torch_threads(threads):
            result.rescore = rescore(task, result.chosen, neighbour, settings, rescore_folds, train_epochs,
                                     out / "work" / "rescore", seed or 0)
    write_outputs(result, out)
    return result


def _open_study(task: Task, groups: list[str], settings: Settings, budgets: Budgets, url: str, name: str,
                sampler: str, seed: int | None, uniform: Sequence[float], trials: int, train_epochs: int,
                resume: bool) -> optuna.Study:
    """The study (created, or resumed when its settings match); a new one gets the uniform-pruning
    candidates of the layer `groups` queued first, once, as the warm start."""
    grid = space.grid(settings.max_ratio, settings.step)
    warm = [r for r in dict.fromkeys(min(grid, key=lambda g: abs(g - u)) for u in uniform)]
    chosen_sampler = studies.sampler(sampler, seed, min(10, max(len(warm) + 2, trials // 4)))
    the_study, created = studies.open_study(
        url, name, chosen_sampler, {"model": task.name, **settings.to_dict(), "groups": groups,
                                    "budgets": budgets.__dict__, "train_epochs": train_epochs,
                                    **({} if task.metric_name == "accuracy" else {"metric": task.metric_name})},
        resume)
    if created:
        for ratio in warm:
            the_study.enqueue_trial(space.uniform(groups, ratio), user_attrs={"uniform": ratio})
    return the_study


def collect(the_study: optuna.Study, label: str, url: str, sampler: str, settings: Settings,
            budgets: Budgets, metric: str = "accuracy", unit: str = "instructions",
            method: str = "") -> SearchResult:
    """The study's finished trials as a SearchResult (front, baseline, choice, verdict)."""
    trials = the_study.get_trials(deepcopy=False)
    candidates = [c for c in map(candidate, trials) if c]
    failed = [(t.number, t.user_attrs.get("error", "pruned")) for t in trials
              if t.state == optuna.trial.TrialState.PRUNED]
    skipped = [(t.number, t.user_attrs["skipped"]) for t in trials
               if t.state == optuna.trial.TrialState.COMPLETE and "skipped" in t.user_attrs]
    chosen, message = outcome(candidates, budgets, metric, unit)
    tracebacks = {t.number: t.user_attrs["traceback"] for t in trials if "traceback" in t.user_attrs}
    uniform = sorted((c for c in candidates if c.uniform is not None), key=lambda c: c.uniform)
    return SearchResult(label, the_study.study_name, url, sampler, settings, budgets,
                        studies.count(the_study, studies.FINISHED), candidates, failed,
                        pareto_front([c for c in candidates if c.feasible]), uniform, chosen,
                        next((c for c in uniform if c.uniform == 0.0), None), skipped=skipped,
                        message=message, metric=metric, tracebacks=tracebacks, unit=unit, method=method)


def write_outputs(result: SearchResult, out: Path) -> None:
    """search.json, pareto.png and report.md in `out` (each written atomically)."""
    write_text_atomic(out / "search.json", json.dumps(result.to_dict(), indent=1) + "\n")
    report.plot(result, out / "pareto.png")
    report.markdown(result, out / "report.md")

