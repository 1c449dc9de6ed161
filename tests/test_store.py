"""The SQLite results store: round trip, queries, schema version, all-or-nothing inserts."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from edgeprune.artefact import content_hash
from edgeprune.compile.elfsize import CATEGORIES, MemoryBreakdown
from edgeprune.errors import EdgepruneError
from edgeprune.profile.devices import Measurement
from edgeprune.profile.store import Record, ResultsStore

MEMORY = MemoryBreakdown(flash={**dict.fromkeys(CATEGORIES, 0), "weights": 1200, "kernels": 300},
                         ram={**dict.fromkeys(CATEGORIES, 0), "arena": 4096, "stack": 2048})


def record(model_hash: str = "abc", board: str = "mps2-an386", **changes) -> Record:
    fields = dict(model_hash=model_hash, options={"opt": 3, "target": "m4"}, board=board,
                  device=f"qemu:{board}", unit="instructions", runs=[1000.0, 1200.0, 1100.0],
                  layers=[("conv", 700.0), ("dense", 390.0)], stack_bytes=512, memory=MEMORY,
                  outputs_match=True, max_abs_error=0.0)
    return Record(**{**fields, **changes})


@pytest.fixture
def store(tmp_path: Path):
    with ResultsStore(tmp_path / "sub" / "results.sqlite") as s:
        yield s


def test_round_trip(store: ResultsStore) -> None:
    first = store.add(record())
    got = store.get(first)
    assert (got.id, got.model_hash, got.options, got.board) == (first, "abc", {"opt": 3, "target": "m4"}, "mps2-an386")
    assert (got.median, got.minimum, got.maximum) == (1100.0, 1000.0, 1200.0)
    assert got.layers == [("conv", 700.0), ("dense", 390.0)]
    assert got.memory == MEMORY and got.outputs_match is True and got.created
    assert got.to_dict()["memory"]["flash_total"] == 1500


def test_queries(store: ResultsStore) -> None:
    a = store.add(record())
    b = store.add(record(board="mps3-an547"))
    c = store.add(record(options={"target": "m4", "opt": 3}))  # same options, other key order
    store.add(record(model_hash="other"))
    assert [r.id for r in store.find("abc")] == [c, b, a]
    assert [r.id for r in store.find("abc", {"opt": 3, "target": "m4"}, "mps2-an386")] == [c, a]
    assert store.find("abc", {"opt": 2}) == []
    assert [r.model_hash for r in store.latest(2)] == ["other", "abc"]
    with pytest.raises(EdgepruneError, match="no measurement 99"):
        store.get(99)


def test_an_interrupted_insert_leaves_nothing(store: ResultsStore) -> None:
    class Interrupt:
        def __float__(self) -> float:
            raise KeyboardInterrupt

    store.add(record())
    with pytest.raises(KeyboardInterrupt):
        store.add(record(layers=[("conv", 1.0), ("dense", Interrupt())]))
    with pytest.raises(sqlite3.IntegrityError):
        store.add(record(layers=[("conv", 1.0), (None, 2.0)]))
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT COUNT(*) FROM measurements").fetchone() == (1,)
    assert db.execute("SELECT COUNT(*) FROM layers").fetchone() == (2,)


def test_schema_version_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    ResultsStore(path).close()
    ResultsStore(path).close()  # opening again is fine
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 7")
    db.close()
    with pytest.raises(EdgepruneError, match="schema version 7"):
        ResultsStore(path)


def test_record_from_measurement(tmp_path: Path) -> None:
    m = Measurement([np.zeros(2, np.int8)], [10, 12, 11], [4, 6], 300, "instructions", 40.0, "mps2-an386", "m1")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"model bytes")
    r = Record.from_measurement(m, model_hash=content_hash(model), options={}, device="qemu:mps2-an386",
                                layer_names=["a", "b"], outputs_match=False)
    assert r.model_hash == hashlib.sha256(b"model bytes").hexdigest()
    assert r.median == 440.0 and r.layers == [("a", 160.0), ("b", 240.0)]
    with pytest.raises(EdgepruneError, match="1 layer names for 2"):
        Record.from_measurement(m, model_hash="x", options={}, device="d", layer_names=["a"])


def test_method_round_trips_and_a_version_1_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # a store as edgeprune wrote it before the method column
        db.executescript("CREATE TABLE measurements (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL,"
                         " model_hash TEXT NOT NULL, options TEXT NOT NULL, board TEXT NOT NULL, device TEXT"
                         " NOT NULL, unit TEXT NOT NULL, runs TEXT NOT NULL, median REAL NOT NULL, minimum REAL"
                         " NOT NULL, maximum REAL NOT NULL, stack_bytes INTEGER, flash_bytes INTEGER, ram_bytes"
                         " INTEGER, memory TEXT, outputs_match INTEGER, max_abs_error REAL);"
                         "INSERT INTO measurements (created, model_hash, options, board, device, unit, runs,"
                         " median, minimum, maximum) VALUES ('2026-01-01', 'old', '{}', 'b', 'd', 'cycles',"
                         " '[5.0]', 5, 5, 5);"
                         "CREATE TABLE layers (measurement_id INTEGER NOT NULL, position INTEGER NOT NULL,"
                         " name TEXT NOT NULL, value REAL NOT NULL); PRAGMA user_version = 1;")
    with ResultsStore(path) as results:
        assert results.find("old")[0].method is None
        new = results.get(results.add(record(unit="cycles", method="DWT cycle counter on the board")))
    assert new.method == "DWT cycle counter on the board"
    with ResultsStore(path) as results:  # migrated on to version 4: architecture and compiler
        kept = results.get(results.add(record(architecture="arch1", relative_error=0.01, compiler="c1")))
        assert (kept.architecture, kept.relative_error, kept.compiler) == ("arch1", 0.01, "c1")
        results.add(record(architecture="arch1", compiler="c2"))
        assert [r.id for r in results.find(architecture="arch1", compiler="c1")] == [kept.id]
        assert results.find("old")[0].architecture is None
        with pytest.raises(EdgepruneError, match="at least one"):
            results.find()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4


def test_an_old_search_cache_is_not_taken_for_a_store(tmp_path: Path) -> None:
    path = tmp_path / "measurements.sqlite"
    with sqlite3.connect(path) as db:  # the search's own cache before it wrote to the results store
        db.execute("CREATE TABLE measurements (architecture TEXT PRIMARY KEY, created TEXT NOT NULL,"
                   " measurement TEXT NOT NULL)")
    with pytest.raises(EdgepruneError, match="not a results store"):
        ResultsStore(path)
    with sqlite3.connect(path) as db:
        assert [c[1] for c in db.execute("PRAGMA table_info(measurements)")] == ["architecture", "created", "measurement"]
