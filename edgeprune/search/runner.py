"""One search run's trials: what Optuna calls for each candidate (`Runner.objective`) and the
progress bar. `edgeprune.search.api.search` sets a runner up and collects its study."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from edgeprune.errors import EdgepruneError
from edgeprune.search import report, space, storage as studies
from edgeprune.search.budgets import Budgets
from edgeprune.search.candidate import Built, build
from edgeprune.search.estimate import LatencyTable, Work, hopeless, layer_work
from edgeprune.search.measure import Measurement, measure, stored_measurement
from edgeprune.search.results import candidate, choose
from edgeprune.search.settings import Settings
from edgeprune.task import CallableError, Task

WORKER = f"{socket.gethostname()}:{os.getpid()}"


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
    return Measurement(instructions, [], 0, 0, float("nan"), method="estimated by the latency table")


@dataclass
class Runner:
    """The trials of one study: each builds a candidate in `work`, then measures it on the
    settings' device, unless the results `store` holds a measurement of its architecture there (by
    `edgeprune profile` or a search) or the latency table says it is hopeless. `dsp`: the device's cores have the DSP kernels (the latency table's features);
    `unit`: what the device's latency counts; `device_options`: open_device's (a flash command)."""

    study: optuna.Study
    task: Task
    settings: Settings
    budgets: Budgets
    store: Path  # the results store (profile.store) the measurements go to and are found in
    groups: list[str]
    work: Path
    dsp: bool
    unit: str = "instructions"
    device_options: dict = field(default_factory=dict)

    def objective(self, trial: optuna.Trial) -> tuple[float, float]:
        """(validation score, instructions); budgets become the trial's constraints."""
        self.work.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"trial-{trial.number}-", dir=self.work))
        try:
            built = self._build(trial, folder)
            features = layer_work(built.model, self.task.input_shape, self.dsp)
            trial.set_user_attr("layer_features", features)
            measured = stored_measurement(self.store, built.architecture, self.settings.device, self.budgets.max_ram)
            trial.set_user_attr("cached", measured is not None)
            if measured is None and trial.user_attrs.get("uniform") is None:
                skipped = screen(self.study, features, built.accuracy, self.budgets)
                if skipped:
                    estimate, reason = skipped
                    trial.set_user_attr("skipped", reason)
                    self._constrain(trial, estimated(estimate))
                    return built.accuracy, estimate
            if measured is None:
                measured = self._measure(trial, built, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        for key, value in {"flash_bytes": measured.flash_bytes, "ram_bytes": measured.ram_bytes,
                           "channels": built.channels, "macs": built.macs,
                           "test_accuracy": built.test_accuracy,
                           "relative_error": measured.relative_error,
                           "layer_instructions": measured.layer_latency, "layer_names": measured.layer_names,
                           "architecture": built.architecture, "worker": WORKER,
                           "patch_grid": measured.patch_grid}.items():
            trial.set_user_attr(key, value)
        self._constrain(trial, measured)
        return built.accuracy, measured.latency

    def _build(self, trial: optuna.Trial, folder: Path) -> Built:
        """The trial's candidate; a failing task callable prunes the trial, with its traceback."""
        ratios = space.suggest(trial, self.groups, self.settings.max_ratio, self.settings.step)
        try:
            return build(self.task, ratios, self.settings, folder)
        except CallableError as exc:
            trial.set_user_attr("error", str(exc))
            trial.set_user_attr("traceback", exc.trace)
            raise optuna.TrialPruned(str(exc)) from exc

    def _measure(self, trial: optuna.Trial, built: Built, folder: Path) -> Measurement:
        """Compile and measure on the device, recorded in the store; a failure prunes the trial."""
        try:
            return measure(built.onnx_path, self.settings.device, folder / "firmware", store=self.store,
                           max_ram=self.budgets.max_ram, **self.device_options)
        except EdgepruneError as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise optuna.TrialPruned(str(exc)) from exc

    def _constrain(self, trial: optuna.Trial, measured: Measurement) -> None:
        for key, value in self.budgets.violations(measured).items():
            trial.set_constraint(key, value)

    def progress(self, bar, trials: int) -> None:
        """Show finished trials and the best candidate within the budgets on `bar` (tqdm)."""
        done = [c for c in map(candidate, self.study.get_trials(deepcopy=False)) if c]
        bar.n = min(trials, studies.count(self.study, studies.FINISHED))
        best = choose([c for c in done if c.feasible])
        bar.set_postfix_str(f"best {report.score(best.accuracy, self.task.metric_name)} @ "
                            f"{best.instructions:,.0f} {self.unit}"
                            if best else "best: none within budgets yet")
        bar.refresh()
