"""The results store: one record per measurement in an SQLite file (stdlib sqlite3).

Records are keyed by the model's content hash, the compile options, the board and the device,
and by the compiled graph's architecture hash (`artefact.architecture_hash`: layer shapes, not
weights) with the compiler's fingerprint: a search finds there what `edgeprune profile` or an
earlier search measured on an architecture, instead of running it again. A record and its layers
are written in one transaction: an interrupted run leaves the store as it was.
"""
from __future__ import annotations

import json
import os
import sqlite3
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from edgeprune.errors import EdgepruneError
from edgeprune.profile.closing import Closing
from edgeprune.profile.devices import Measurement
from edgeprune.compile.elfsize import MemoryBreakdown

SCHEMA_VERSION = 4  # 2: the `method` column; 3: `architecture` and `relative_error`; 4: `compiler`
SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created TEXT NOT NULL,
  model_hash TEXT NOT NULL,
  options TEXT NOT NULL,          -- canonical JSON of the compile options
  board TEXT NOT NULL,
  device TEXT NOT NULL,
  unit TEXT NOT NULL,             -- what the figures count: cycles, instructions, ns
  method TEXT,                    -- how: e.g. "QEMU, -icount shift=0", "DWT cycle counter on the board"
  runs TEXT NOT NULL,             -- JSON list, one figure per run
  median REAL NOT NULL,
  minimum REAL NOT NULL,
  maximum REAL NOT NULL,
  stack_bytes INTEGER,
  flash_bytes INTEGER,
  ram_bytes INTEGER,
  memory TEXT,                    -- JSON of MemoryBreakdown.to_dict()
  outputs_match INTEGER,          -- 1 if the outputs agree with the reference, 0 if not
  max_abs_error REAL,
  architecture TEXT,              -- the compiled graph's architecture hash (artefact.architecture_hash)
  relative_error REAL,            -- outputs vs the reference, relative to the reference's scale
  compiler TEXT                   -- the compiler's fingerprint (compile.fingerprint)
);
CREATE INDEX IF NOT EXISTS measurements_key ON measurements (model_hash, options, board, device);
CREATE INDEX IF NOT EXISTS measurements_architecture ON measurements (architecture);
CREATE TABLE IF NOT EXISTS layers (
  measurement_id INTEGER NOT NULL REFERENCES measurements (id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  name TEXT NOT NULL,
  value REAL NOT NULL,            -- in the measurement's unit, last run
  PRIMARY KEY (measurement_id, position)
);
"""
COLUMNS = ("id", "created", "model_hash", "options", "board", "device", "unit", "runs",
           "stack_bytes", "memory", "outputs_match", "max_abs_error", "method", "architecture",
           "relative_error", "compiler")
MIGRATIONS = {  # from version N to N + 1
    1: "ALTER TABLE measurements ADD COLUMN method TEXT;",
    2: "ALTER TABLE measurements ADD COLUMN architecture TEXT;"
       " ALTER TABLE measurements ADD COLUMN relative_error REAL;"
       " CREATE INDEX measurements_architecture ON measurements (architecture);",
    3: "ALTER TABLE measurements ADD COLUMN compiler TEXT;",
}


def default_store_path() -> Path:
    """$EDGEPRUNE_STORE, else $XDG_DATA_HOME/edgeprune/results.sqlite (~/.local/share/...)."""
    if os.environ.get("EDGEPRUNE_STORE"):
        return Path(os.environ["EDGEPRUNE_STORE"])
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "edgeprune" / "results.sqlite"


def _canonical(options: dict) -> str:
    return json.dumps(options, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Record:
    """One measurement of one model build on one device; figures are in `unit`."""

    model_hash: str
    options: dict
    board: str
    device: str
    unit: str
    runs: list[float]
    layers: list[tuple[str, float]] = field(default_factory=list)  # (name, figure), last run
    stack_bytes: int | None = None
    memory: MemoryBreakdown | None = None
    outputs_match: bool | None = None
    max_abs_error: float | None = None
    id: int | None = None
    created: str | None = None
    method: str | None = None  # how the figures were measured (the timer, or QEMU's counting)
    architecture: str | None = None  # the compiled graph's architecture hash (ONNX models)
    relative_error: float | None = None
    compiler: str | None = None  # the fingerprint of the compiler that built the firmware (its manifest)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def minimum(self) -> float:
        return min(self.runs)

    @property
    def maximum(self) -> float:
        return max(self.runs)

    @classmethod
    def from_measurement(cls, m: Measurement, *, model_hash: str, options: dict, device: str,
                         layer_names: Sequence[str], **extra) -> Record:
        """A record of `m`; `extra` sets memory, outputs_match, max_abs_error, method,
        architecture, relative_error or compiler."""
        if len(layer_names) != len(m.layer_ticks):
            raise EdgepruneError(f"{len(layer_names)} layer names for {len(m.layer_ticks)} layer timings")
        return cls(model_hash, options, m.board, device, m.unit,
                   [t * m.units_per_tick for t in m.run_ticks], list(zip(layer_names, m.layers)),
                   m.stack_bytes, **extra)

    def to_dict(self) -> dict:
        return {"id": self.id, "created": self.created, "model_hash": self.model_hash,
                "options": self.options, "board": self.board, "device": self.device,
                "unit": self.unit, "runs": self.runs, "median": self.median,
                "minimum": self.minimum, "maximum": self.maximum,
                "layers": [{"name": n, "value": v} for n, v in self.layers],
                "stack_bytes": self.stack_bytes,
                "memory": self.memory.to_dict() if self.memory else None,
                "outputs_match": self.outputs_match, "max_abs_error": self.max_abs_error,
                "method": self.method, "architecture": self.architecture,
                "relative_error": self.relative_error, "compiler": self.compiler}


class ResultsStore(Closing):
    """Measurement records in the SQLite file at `path` (created with its folder if missing)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA foreign_keys = ON")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            if self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'measurements'").fetchone():
                self._db.close()
                raise EdgepruneError(f"{self.path} holds a measurements table that is not a results store "
                                     "(an older search's measurement cache?); move it aside")
            with self._db:
                self._db.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        elif version in MIGRATIONS:
            with self._db:
                for step in range(version, SCHEMA_VERSION):
                    self._db.executescript(f"BEGIN; {MIGRATIONS[step]} PRAGMA user_version = {step + 1}; COMMIT;")
        elif version != SCHEMA_VERSION:
            self._db.close()
            raise EdgepruneError(f"{self.path} has results schema version {version}; this edgeprune "
                                 f"reads version {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()


    def add(self, record: Record) -> int:
        """Stores `record` and its layers in one transaction; returns its id."""
        memory = record.memory
        with self._db:  # commits, or rolls back on any exception (KeyboardInterrupt too)
            cursor = self._db.execute(
                "INSERT INTO measurements (created, model_hash, options, board, device, unit, runs,"
                " median, minimum, maximum, stack_bytes, flash_bytes, ram_bytes, memory,"
                " outputs_match, max_abs_error, method, architecture, relative_error, compiler)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 record.model_hash, _canonical(record.options), record.board, record.device,
                 record.unit, json.dumps(record.runs), record.median, record.minimum,
                 record.maximum, record.stack_bytes, memory and memory.flash_total,
                 memory and memory.ram_total, memory and json.dumps(memory.to_dict()),
                 record.outputs_match, record.max_abs_error, record.method, record.architecture,
                 record.relative_error, record.compiler))
            self._db.executemany(
                "INSERT INTO layers (measurement_id, position, name, value) VALUES (?, ?, ?, ?)",
                ((cursor.lastrowid, i, name, float(value)) for i, (name, value) in enumerate(record.layers)))
        return cursor.lastrowid

    def get(self, record_id: int) -> Record:
        records = self._select("id = ?", (record_id,))
        if not records:
            raise EdgepruneError(f"no measurement {record_id} in {self.path}")
        return records[0]

    def latest(self, count: int = 1) -> list[Record]:
        """The `count` most recent records, newest first."""
        return self._select("1", (), limit=count)

    def find(self, model_hash: str | None = None, options: dict | None = None, board: str | None = None,
             device: str | None = None, architecture: str | None = None,
             compiler: str | None = None) -> list[Record]:
        """Records matching every criterion given (a model, options, board, device, architecture
        hash, compiler fingerprint); newest first."""
        where, args = [], []
        for column, value in (("model_hash", model_hash),
                              ("options", None if options is None else _canonical(options)),
                              ("board", board), ("device", device), ("architecture", architecture),
                              ("compiler", compiler)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if not where:
            raise EdgepruneError("find needs at least one of model_hash, options, board, device, architecture, "
                                 "compiler")
        return self._select(" AND ".join(where), tuple(args))

    def _select(self, where: str, args: tuple, limit: int = -1) -> list[Record]:
        rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM measurements WHERE {where}"
                                " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [self._record(dict(zip(COLUMNS, row))) for row in rows]

    def _record(self, row: dict) -> Record:
        layers = self._db.execute("SELECT name, value FROM layers WHERE measurement_id = ?"
                                  " ORDER BY position", (row["id"],)).fetchall()
        return Record(row["model_hash"], json.loads(row["options"]), row["board"], row["device"],
                      row["unit"], json.loads(row["runs"]), [tuple(layer) for layer in layers],
                      row["stack_bytes"],
                      MemoryBreakdown.from_dict(json.loads(row["memory"])) if row["memory"] else None,
                      None if row["outputs_match"] is None else bool(row["outputs_match"]),
                      row["max_abs_error"], row["id"], row["created"], row["method"],
                      row["architecture"], row["relative_error"], row["compiler"])
