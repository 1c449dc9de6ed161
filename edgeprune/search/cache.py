"""Measurements cached by architecture hash in a small SQLite file, shared by searches and
processes, so a repeated architecture is compiled and measured once."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from edgeprune.search.measure import Measurement

SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
  architecture TEXT PRIMARY KEY,  -- space.architecture_hash (layer shapes, device, precision)
  created TEXT NOT NULL,
  measurement TEXT NOT NULL       -- JSON of Measurement
)"""


class MeasurementCache:
    """get/put Measurement by architecture hash; safe for several processes (SQLite locking)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        with self._db:
            self._db.execute(SCHEMA)

    def get(self, architecture: str) -> Measurement | None:
        row = self._db.execute("SELECT measurement FROM measurements WHERE architecture = ?",
                               (architecture,)).fetchone()
        return Measurement(**json.loads(row[0])) if row else None

    def put(self, architecture: str, measurement: Measurement) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO measurements VALUES (?, ?, ?)",
                             (architecture, datetime.now(timezone.utc).isoformat(),
                              json.dumps(measurement.to_dict())))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]

    def close(self) -> None:
        self._db.close()
