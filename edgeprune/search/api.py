"""`edgeprune.search(...)`: hardware-aware per-layer sparsity search with Optuna, every candidate
pruned, finetuned, quantized, compiled and measured on the device."""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import optuna
from tqdm.auto import tqdm

from edgeprune._atomic import write_text_atomic
from edgeprune.errors import EdgepruneError
from edgeprune.models.train import Recipe, torch_threads
from edgeprune.profile.defaults import DEFAULT_DEVICE
from edgeprune.search import report, space, storage as studies
from edgeprune.search.base import load_base
from edgeprune.search.budgets import Budgets
from edgeprune.search.cache import MeasurementCache
from edgeprune.search.candidate import Settings, build
from edgeprune.search.export import export_candidate
from edgeprune.search.estimate import LatencyTable, Work, hopeless, layer_work
from edgeprune.search.measure import Measurement, device_has_dsp, measure
from edgeprune.search.errors import SearchError
from edgeprune.search.rescore import check_rescorable, rescore, uniform_neighbour
from edgeprune.search.results import Candidate, candidate, choose, pareto_front
from edgeprune.task import CallableError, Task, metric_label

UNIFORM = (0.0, 0.3, 0.5, 0.7)
WORKER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class SearchResult:
    """Everything the search found; `chosen` is None when no candidate meets the budgets."""

    model: str
    study: str
    storage: str
    sampler: str
    settings: Settings
    budgets: Budgets
    finished: int
    candidates: list[Candidate]
    failed: list[tuple[int, str]]
    front: list[Candidate] = field(default_factory=list)
    uniform: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None
    reference: Candidate | None = None  # the unpruned (uniform 0.0) candidate, if measured
    exported: Path | None = None
    skipped: list[tuple[int, str]] = field(default_factory=list)  # not measured: latency table
    message: str = ""
    validation_samples: int = 0  # the split every candidate's score is measured on (0: the task's evaluate)
    metric: str = "accuracy"  # the task's metric that the search maximises
    task_finetune: bool = False  # candidates finetuned by the task's finetune, not edgeprune's recipe
    tracebacks: dict[int, str] = field(default_factory=dict)  # failed trials: where a task's callable failed
    rescore: dict | None = None  # k-fold re-scoring of the chosen candidate and its uniform neighbour (`rescore`)

    @property
    def metric_label(self) -> str:
        return metric_label(self.metric)

    @property
    def cache_hits(self) -> int:
        return sum(c.cached for c in self.candidates)

    def to_dict(self) -> dict:
        return {"model": self.model, "study": self.study, "storage": self.storage,
                "sampler": self.sampler, "settings": self.settings.to_dict(),
                "budgets": self.budgets.__dict__, "finished": self.finished,
                "message": self.message, "cache_hits": self.cache_hits,
                "latency_estimate_used": bool(self.skipped), "skipped": self.skipped,
                "candidates": [c.to_dict() for c in self.candidates],
                "pareto": [c.number for c in self.front],
                "uniform": [c.number for c in self.uniform],
                "chosen": self.chosen.to_dict() if self.chosen else None,
                "reference": self.reference.number if self.reference else None,
                "exported": str(self.exported) if self.exported else None,
                "failed": self.failed, "tracebacks": self.tracebacks,
                "validation_samples": self.validation_samples, "metric": self.metric,
                "task_finetune": self.task_finetune, "rescore": self.rescore}


def outcome(candidates: list[Candidate], budgets: Budgets,
            metric: str = "accuracy") -> tuple[Candidate | None, str]:
    """The chosen candidate and a one-line verdict (what is closest when nothing fits)."""
    feasible = [c for c in candidates if c.feasible]
    chosen = choose(feasible)
    if chosen:
        return chosen, (f"chosen: trial {chosen.number}, {report.score(chosen.accuracy, metric)} "
                        f"{metric_label(metric)}, "
                        f"{chosen.instructions:,.0f} instructions, flash {chosen.flash_bytes:,} B, "
                        f"RAM {chosen.ram_bytes:,} B")
    if not candidates:
        return None, "no candidate was measured"
    fastest = min(candidates, key=lambda c: c.instructions)
    return None, (f"no candidate meets the budgets ({budgets.describe()}) in {len(candidates)} "
                  f"measured candidates; the closest reach {fastest.instructions:,.0f} "
                  f"instructions, flash {min(c.flash_bytes for c in candidates):,} B, RAM "
                  f"{min(c.ram_bytes for c in candidates):,} B; relax a budget or prune further "
                  f"(larger max ratio)")


def screen(the_study: optuna.Study, features: Work, accuracy: float,
           budgets: Budgets) -> tuple[float, str] | None:
    """(estimate, reason) when the latency table learned from the study's measured trials says a
    candidate is hopeless; None when it must be measured (or the table has too few samples)."""
    trials = the_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    measured = [(t, c) for t in trials
                if (c := candidate(t)) and "layer_features" in t.user_attrs]
    table = LatencyTable.learn(
        *([(t.user_attrs["layer_features"], c.instructions) for t, c in measured
           if (c.uniform is None) == searched] for searched in (False, True)))
    if table is None:
        return None
    estimate = table.predict(features)
    reason = hopeless(estimate, accuracy, [c for _, c in measured], budgets, table.margin)
    return (estimate, reason) if reason else None


def estimated(instructions: float) -> Measurement:
    """A stand-in measurement for a skipped candidate: only its latency is known (estimated)."""
    return Measurement(instructions, [], 0, 0, {}, float("nan"))


def search(model: str | os.PathLike | Task, *, device: str = DEFAULT_DEVICE, trials: int = 20,
           out: str | os.PathLike = "build/search", max_latency: float | None = None,
           max_flash: int | None = None, max_ram: int | None = None,
           storage: str | None = None, study: str | None = None, resume: bool = False,
           sampler: str = "tpe", seed: int | None = None, uniform: Sequence[float] = UNIFORM,
           precision: str = "int8", round_to: int = 4, max_ratio: float = 0.8,
           step: float = 0.1, finetune_epochs: int = 60, distill: float = 0.8,
           train_epochs: int = 30, threads: int = 1,
           export: bool = True, progress: bool = True, trust_pickle: bool = False,
           input_shape: tuple[int, ...] | None = None, rescore_folds: int = 0) -> SearchResult:
    """Search per-layer pruning ratios of `model` (a Task or task reference `FILE.py:NAME`; a zoo
    name, trained here on its default data first; or a `.pt` saved by edgeprune) for `trials`
    finished trials in total (all workers of the study).

    Objectives: the task's metric on validation (max; default top-1) and instructions measured on
    `device` (min); latency, flash and RAM budgets are constraints. A trial whose task callable
    (finetune, evaluate) fails is recorded as failed with its traceback; the study goes on. torch
    trains with `threads` threads (default 1: the candidates are small models, and on a shared
    machine more threads mostly spin). Writes
    OUT/report.md, pareto.png, search.json and the chosen candidate in OUT/chosen (model.pt,
    model.int8.onnx, firmware/). `rescore_folds` K >= 2 re-scores the chosen candidate and its uniform
    neighbour on K folds of the task's data outside validation (`search.rescore`), into the report.
    """
    if trials < 1:
        raise EdgepruneError(f"trials must be at least 1, got {trials}")
    out = Path(out).resolve()  # the emulator runs in another working directory
    settings = Settings(device=device, precision=precision, round_to=round_to,
                        max_ratio=max_ratio, step=step,
                        finetune=Recipe(epochs=finetune_epochs, lr=5e-3, distill=distill))
    budgets = Budgets(max_latency, max_flash, max_ram)
    with torch_threads(threads):
        task = load_base(model, out, train_epochs, trust_pickle, input_shape)
    if rescore_folds:
        check_rescorable(task, rescore_folds)
    out.mkdir(parents=True, exist_ok=True)
    base, label, shape = task.model, task.name, task.input_shape
    names = space.groups(base, shape)
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    name = study or f"{label}-{device.replace(':', '-')}"
    grid = space.grid(max_ratio, step)
    warm = [r for r in dict.fromkeys(min(grid, key=lambda g: abs(g - u)) for u in uniform)]
    chosen_sampler = studies.sampler(sampler, seed, min(10, max(len(warm) + 2, trials // 4)))
    the_study, created = studies.open_study(
        url, name, chosen_sampler, {"model": label, **settings.to_dict(), "groups": names,
                                    "budgets": budgets.__dict__, "train_epochs": train_epochs,
                                    **({} if task.metric_name == "accuracy" else {"metric": task.metric_name})},
        resume)
    if created:  # the warm start: uniform-pruning candidates first, queued once per study
        for ratio in warm:
            the_study.enqueue_trial(space.uniform(names, ratio), user_attrs={"uniform": ratio})
    cache = MeasurementCache(out / "measurements.sqlite")
    dsp = device_has_dsp(device)
    work = out / "work"

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        work.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"trial-{trial.number}-", dir=work))
        try:
            try:
                built = build(task, space.suggest(trial, names, max_ratio, step), settings, folder)
            except CallableError as exc:
                trial.set_user_attr("error", str(exc))
                trial.set_user_attr("traceback", exc.trace)
                raise optuna.TrialPruned(str(exc)) from exc
            features = layer_work(built.model, shape, dsp)
            trial.set_user_attr("layer_features", features)
            measured = cache.get(built.architecture)
            trial.set_user_attr("cached", measured is not None)
            if measured is None and trial.user_attrs.get("uniform") is None:
                skipped = screen(the_study, features, built.accuracy, budgets)
                if skipped:
                    estimate, reason = skipped
                    trial.set_user_attr("skipped", reason)
                    for key, value in budgets.violations(estimated(estimate)).items():
                        trial.set_constraint(key, value)
                    return built.accuracy, estimate
            if measured is None:
                try:
                    measured = measure(built.onnx_path, device, folder / "firmware")
                except EdgepruneError as exc:
                    trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
                    raise optuna.TrialPruned(str(exc)) from exc
                cache.put(built.architecture, measured)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        for key, value in {"flash_bytes": measured.flash_bytes, "ram_bytes": measured.ram_bytes,
                           "channels": built.channels, "macs": built.macs,
                           "test_accuracy": built.test_accuracy,
                           "relative_error": measured.relative_error,
                           "layer_instructions": measured.layer_instructions, "layer_names": measured.layer_names,
                           "architecture": built.architecture, "worker": WORKER}.items():
            trial.set_user_attr(key, value)
        for key, value in budgets.violations(measured).items():
            trial.set_constraint(key, value)
        return built.accuracy, measured.instructions

    bar = tqdm(total=trials, desc="search", unit="trial", disable=not progress)

    def show_progress() -> None:
        done = [c for c in map(candidate, the_study.get_trials(deepcopy=False)) if c]
        bar.n = min(trials, studies.count(the_study, studies.FINISHED))
        best = choose([c for c in done if c.feasible])
        bar.set_postfix_str(f"best {report.score(best.accuracy, task.metric_name)} @ "
                            f"{best.instructions:,.0f} instr"
                            if best else "best: none within budgets yet")
        bar.refresh()

    try:
        with torch_threads(threads):
            studies.run_until(the_study, objective, trials, show_progress)
    finally:
        bar.close()
        cache.close()
    result = collect(the_study, label, url, sampler, settings, budgets, task.metric_name)
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
                                     work / "rescore", seed or 0)
    write_outputs(result, out)
    return result


def collect(the_study: optuna.Study, label: str, url: str, sampler: str, settings: Settings,
            budgets: Budgets, metric: str = "accuracy") -> SearchResult:
    """The study's finished trials as a SearchResult (front, baseline, choice, verdict)."""
    trials = the_study.get_trials(deepcopy=False)
    candidates = [c for c in map(candidate, trials) if c]
    failed = [(t.number, t.user_attrs.get("error", "pruned")) for t in trials
              if t.state == optuna.trial.TrialState.PRUNED]
    skipped = [(t.number, t.user_attrs["skipped"]) for t in trials
               if t.state == optuna.trial.TrialState.COMPLETE and "skipped" in t.user_attrs]
    chosen, message = outcome(candidates, budgets, metric)
    tracebacks = {t.number: t.user_attrs["traceback"] for t in trials if "traceback" in t.user_attrs}
    uniform = sorted((c for c in candidates if c.uniform is not None), key=lambda c: c.uniform)
    return SearchResult(label, the_study.study_name, url, sampler, settings, budgets,
                        studies.count(the_study, studies.FINISHED), candidates, failed,
                        pareto_front([c for c in candidates if c.feasible]), uniform, chosen,
                        next((c for c in uniform if c.uniform == 0.0), None), skipped=skipped,
                        message=message, metric=metric, tracebacks=tracebacks)


def write_outputs(result: SearchResult, out: Path) -> None:
    """search.json, pareto.png and report.md in `out` (each written atomically)."""
    write_text_atomic(out / "search.json", json.dumps(result.to_dict(), indent=1) + "\n")
    report.plot(result, out / "pareto.png")
    report.markdown(result, out / "report.md")

