"""A killed search resumes without losing or repeating a finished trial, as two workers sharing
one study on a real PostgreSQL server (started here on loopback, skipped when it cannot be)."""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from edgeprune.search.storage import storage as search_storage

pytestmark = [pytest.mark.qemu, pytest.mark.slow]  # whole searches in subprocesses
STUDY = "digits_cnn-qemu-mps2-an386"
FAST = ["--train-epochs", "5", "--finetune-epochs", "1", "--quiet", "--seed", "0"]


def search_command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "edgeprune.cli", "search", "digits_cnn", "-o", str(out),
            *FAST, *extra]


def completed(storage: str, study: str = STUDY) -> list[optuna.trial.FrozenTrial]:
    try:
        loaded = optuna.load_study(study_name=study, storage=search_storage(storage))  # races the workers' schema creation safely
    except KeyError:  # not created yet
        return []
    return loaded.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def postgres_binaries() -> tuple[str, str] | None:
    found = [shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                    reverse=True)), None)
             for name in ("initdb", "pg_ctl")]
    return tuple(found) if all(found) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """postgresql://edge@127.0.0.1:PORT/search on a throw-away server (as user postgres if root)."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg (PyPI psycopg[binary]), SQLAlchemy's "
                                  "PostgreSQL driver, is not installed")
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("initdb/pg_ctl not found (Debian package postgresql)")
    initdb, pg_ctl = binaries
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="edgeprune-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root and runuser is missing: cannot start PostgreSQL")
        try:
            shutil.chown(root, "postgres")
        except LookupError:
            pytest.skip("running as root and there is no postgres user to run the server")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = root / "data"
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", "edge", "--auth=trust"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                        f"-c listen_addresses=127.0.0.1 -p {port} -k {root}", "start"],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot start a PostgreSQL server: {exc}")
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="edge", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute("CREATE DATABASE search")
        yield f"postgresql://edge@127.0.0.1:{port}/search"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def test_a_killed_search_resumes_as_two_workers_without_losing_or_repeating_trials(postgres, tmp_path):
    """One worker is killed mid-search; two workers resume the study together on PostgreSQL and
    finish it: finished trials are kept as they were, none is repeated, both workers take part."""
    args = ["--trials", "4", "--storage", postgres, "--uniform", "0.0", "0.3", "0.5", "0.7"]
    first = subprocess.Popen(search_command(tmp_path / "w0", *args), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        while not completed(postgres):
            assert first.poll() is None, "the search ended before it could be killed"
            time.sleep(0.2)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    done_before = {t.number: t.values for t in completed(postgres)}
    assert 1 <= len(done_before) < 4
    # (The chosen candidate's export is test_search's: here it would only compile it twice more.)
    workers = [subprocess.Popen(search_command(tmp_path / name, *args, "--resume", "--no-export"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("w1", "w2")]
    printed = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-2000:]
        printed.append(out)
    after = completed(postgres)
    # Each worker checks the shared count before starting a trial; both may pass that check at
    # the same moment once, so the total is N or, rarely, N + 1.
    assert 4 <= len(after) <= 5
    assert {t.number: t.values for t in after if t.number in done_before} == done_before
    assert len({t.user_attrs["worker"] for t in after if t.number not in done_before}) == 2
    assert sorted(t.user_attrs["uniform"] for t in after if "uniform" in t.user_attrs) == [0.0, 0.3, 0.5, 0.7]
    all_trials = optuna.load_study(study_name=STUDY, storage=search_storage(postgres)).get_trials()
    assert not [t for t in all_trials if t.state == TrialState.RUNNING]
    assert all("chosen: trial" in out for out in printed)
