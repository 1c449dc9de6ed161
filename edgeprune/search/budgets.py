"""Device budgets: latency (in the device's unit), flash and RAM, as Optuna constraint values."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from edgeprune.search.errors import SearchError
from edgeprune.search.measure import Measurement


@dataclass(frozen=True)
class Budgets:
    max_latency: float | None = None  # per inference, in the device's unit (instructions on QEMU)
    max_flash: int | None = None  # bytes
    max_ram: int | None = None  # bytes

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is not None and value <= 0:
                raise SearchError(f"{name.replace('_', '-')} must be positive, got {value}")

    def violations(self, m: Measurement) -> dict[str, float]:
        """One value per budget, relative to it: <= 0 where met (Optuna's constraint form)."""
        pairs = {"latency": (m.latency, self.max_latency),
                 "flash": (m.flash_bytes, self.max_flash), "ram": (m.ram_bytes, self.max_ram)}
        return {key: (value - limit) / limit if limit else 0.0
                for key, (value, limit) in pairs.items()}

    def describe(self, unit: str = "instructions") -> str:
        parts = [f"latency <= {self.max_latency:,.0f} {unit}" if self.max_latency else "",
                 f"flash <= {self.max_flash:,} B" if self.max_flash else "",
                 f"RAM <= {self.max_ram:,} B" if self.max_ram else ""]
        return ", ".join(p for p in parts if p) or "none"
