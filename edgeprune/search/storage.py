"""The Optuna study: RDB storage (SQLite file or PostgreSQL), heartbeats, retry of killed trials.

A trial whose process dies stops sending heartbeats; after the grace period any worker marks it
FAIL and re-enqueues its parameters, so a resumed or shared search neither loses a finished trial
nor repeats one. A process killed between creating a trial and its first heartbeat leaves a
RUNNING trial with no heartbeat, which Optuna never counts as stale: the workers give such a
trial a heartbeat of their own (`_adopt_silent`), so it goes stale like the others.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

from edgeprune.search.errors import SearchError

HEARTBEAT_SECONDS = 2
GRACE_SECONDS = 6
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SAMPLERS = ("tpe", "nsga2")
DIRECTIONS = ("maximize", "minimize")  # accuracy, instructions
SCHEMA_ATTEMPTS = 5  # workers starting together race to create Optuna's tables


def storage(url: str) -> RDBStorage:
    """An RDB storage with heartbeats; `sqlite:///path` or `postgresql://user@host/db` (driver:
    psycopg 3, SQLAlchemy's default; `postgresql+psycopg2://` selects psycopg2). When another
    worker is creating the schema at the same moment, the losing worker tries again."""
    for attempt in range(SCHEMA_ATTEMPTS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                return RDBStorage(url, engine_kwargs=engine_options(url),
                                  heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                                  heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(3))
            except ImportError as exc:
                raise SearchError(f"storage {url}: missing database driver ({exc}); for PostgreSQL "
                                  "install psycopg[binary]") from exc
            except Exception as exc:
                if attempt + 1 < SCHEMA_ATTEMPTS and "already exists" in str(exc):
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise SearchError(f"cannot open storage {url}: {exc}") from exc
    raise AssertionError("unreachable")


def engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True}


def sampler(name: str, seed: int | None, startup: int) -> optuna.samplers.BaseSampler:
    """TPE (default: few, expensive trials) or NSGA-II; both read the budgets from the trials'
    constraints (`Trial.set_constraint`)."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, startup))
    raise SearchError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}")


def open_study(url: str, name: str, chosen_sampler: optuna.samplers.BaseSampler,
               settings: dict, resume: bool) -> tuple[optuna.Study, bool]:
    """(study, created here): create the study, or load it with `resume` (its settings must
    equal `settings`). Exactly one of several workers starting together creates it."""
    store = storage(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(storage=store, study_name=name, sampler=chosen_sampler,
                                    directions=list(DIRECTIONS))
        study.set_user_attr("settings", settings)
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        if not resume:
            raise SearchError(f"study {name!r} already exists in {url}; pass --resume to "
                              "continue it (or join it as another worker), or choose another "
                              "--study name") from None
    study = optuna.load_study(storage=store, study_name=name, sampler=chosen_sampler)
    stored = study.user_attrs.get("settings")
    if stored != settings:
        stored = stored or {}
        changed = sorted(k for k in {*stored, *settings} if stored.get(k) != settings.get(k))
        raise SearchError(f"study {name!r} was started with other settings ({', '.join(changed)}"
                          f"): stored {[stored.get(k) for k in changed]}, "
                          f"given {[settings.get(k) for k in changed]}")
    return study, False


def count(study: optuna.Study, states: Sequence[TrialState]) -> int:
    return len(study.get_trials(deepcopy=False, states=tuple(states)))


def run_until(study: optuna.Study, objective: Callable[[optuna.Trial], Sequence[float]],
              target: int, on_progress: Callable[[], None]) -> None:
    """Run trials in this process until the study has `target` finished trials in total (all
    workers together). Trials still running elsewhere count; a dead worker's stale trial is
    failed and retried after the grace period."""
    adopted: set[int] = set()
    while True:
        _adopt_silent(study, adopted)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)
        finished = count(study, FINISHED)
        on_progress()
        if finished >= target:
            return
        if finished + count(study, (TrialState.RUNNING,)) >= target:
            time.sleep(HEARTBEAT_SECONDS)
            continue
        study.optimize(objective, n_trials=1, catch=())


def _adopt_silent(study: optuna.Study, adopted: set[int]) -> None:
    """Record one heartbeat, once per process, for each RUNNING trial that started more than a
    grace period ago. A live trial beats on by itself; a dead one that never beat (killed right
    after it was created, before its first heartbeat) is then stale a grace period later, and
    `fail_stale_trials` fails and retries it; without a heartbeat, every worker would wait for it
    for ever. (A dead trial that did beat goes stale at most a grace period later than it would.)"""
    started_before = datetime.now() - timedelta(seconds=GRACE_SECONDS)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = trial.datetime_start
        if trial._trial_id not in adopted and started is not None and started < started_before:
            study._storage.record_heartbeat(trial._trial_id)
            adopted.add(trial._trial_id)
