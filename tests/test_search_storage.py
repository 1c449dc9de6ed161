"""The search's study storage (search/storage.py) on SQLite: a trial whose worker died is retried,
not waited for, even one that died before it sent a heartbeat."""
import threading

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from edgeprune.search import storage as studies


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_killed_before_its_first_heartbeat_is_retried_not_waited_for(tmp_path, monkeypatch):
    monkeypatch.setattr(studies, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(studies, "GRACE_SECONDS", 1)
    study, _ = studies.open_study(f"sqlite:///{tmp_path / 'study.db'}", "s", optuna.samplers.RandomSampler(seed=0),
                                  {}, resume=False)
    # RUNNING with no heartbeat, as a worker leaves it when killed between creating a trial and beating
    orphan = study.ask({"x": FloatDistribution(0.0, 1.0)})
    finished = threading.Event()

    def resume():
        studies.run_until(study, lambda trial: (trial.suggest_float("x", 0.0, 1.0), 0.0), 1, lambda: None)
        finished.set()

    threading.Thread(target=resume, daemon=True).start()
    assert finished.wait(30), "the search waits for ever on a trial that never sent a heartbeat"
    trials = study.get_trials(deepcopy=False)
    assert trials[orphan.number].state == TrialState.FAIL
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert [t.params for t in complete] == [{"x": orphan.params["x"]}]  # the dead trial's parameters, again
