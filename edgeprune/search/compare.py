"""Searched vs uniform pruning: the two figures of issue 7, from measured instructions and one
accuracy per candidate (e.g. cross-validated).

Definitions (also written into the JSON):
- reference: the unpruned int8 model (the uniform candidate of ratio 0).
- within one point: accuracy >= reference accuracy - `tolerance`.
- speed-up: reference instructions / instructions of the fastest searched candidate within
  one point (target >= 2).
- equal accuracy: the best uniform candidate is the fastest uniform one within one point; the
  searched candidate matched to it is the fastest searched one at least as accurate as it;
  reduction = 1 - its instructions / the uniform one's (target >= 15 %).
"""
from __future__ import annotations

from collections.abc import Mapping

from edgeprune.search.results import Candidate

POINT = 0.01
SPEEDUP_TARGET = 2.0
REDUCTION_TARGET = 0.15
ROLES = ("reference", "best_uniform_within_1pt", "best_searched_within_1pt",
         "searched_at_uniform_accuracy")
DEFINITIONS = {
    "reference": "the unpruned int8 model (uniform ratio 0)",
    "within_one_point": "accuracy >= reference accuracy - 0.01",
    "speedup": "reference instructions / instructions of the fastest searched candidate within "
               "one point; target >= 2",
    "equal_accuracy": "best uniform = fastest uniform candidate within one point; matched = "
                      "fastest searched candidate at least as accurate as the best uniform; "
                      "reduction = 1 - matched instructions / best uniform instructions; "
                      "target >= 0.15",
}


def fastest(candidates: list[Candidate], accuracy: Mapping[int, float],
            floor: float) -> Candidate | None:
    """The candidate with the fewest instructions whose accuracy is at least `floor`."""
    ok = [c for c in candidates if accuracy[c.number] >= floor - 1e-9]
    return min(ok, key=lambda c: (c.instructions, -accuracy[c.number], c.number), default=None)


def row(c: Candidate | None, accuracy: Mapping[int, float]) -> dict | None:
    return None if c is None else {"trial": c.number, "uniform": c.uniform,
                                   "accuracy": accuracy[c.number], "validation": c.accuracy,
                                   "instructions": c.instructions, "channels": c.channels}


def confirm(figures: dict, accuracy: Mapping[int, float], tolerance: float = POINT) -> dict:
    """The candidates that decide both figures, scored again independently (`accuracy`, e.g.
    cross-validated on other folds): do the verdicts hold there? Choosing among many noisy
    scores favours the lucky; a fresh score of the chosen few does not."""
    again = {role: accuracy[figures[role]["trial"]] if figures[role] else None for role in ROLES}
    ref, uniform, searched, matched = (again[role] for role in ROLES)
    return {"accuracy": again,
            "speedup_confirmed": figures["speedup_met"] and searched >= ref - tolerance - 1e-9,
            "reduction_confirmed": figures["reduction_met"] and matched >= uniform - 1e-9}


def decisive(figures: dict) -> list[int]:
    """Trials whose accuracy decides the verdicts (for `confirm`)."""
    return sorted({figures[role]["trial"] for role in ROLES if figures[role]})


def compare(candidates: list[Candidate], accuracy: Mapping[int, float],
            tolerance: float = POINT) -> dict:
    """Both figures and verdicts, over the candidates that have an `accuracy` entry."""
    scored = [c for c in candidates if c.number in accuracy]
    uniform = [c for c in scored if c.uniform is not None]
    searched = [c for c in scored if c.uniform is None]
    reference = next((c for c in uniform if c.uniform == 0.0), None)
    if reference is None:
        raise ValueError("the unpruned candidate (uniform ratio 0) has no accuracy")
    floor = accuracy[reference.number] - tolerance
    best_uniform = fastest(uniform, accuracy, floor)
    best_searched = fastest(searched, accuracy, floor)
    matched = fastest(searched, accuracy, accuracy[best_uniform.number])
    speedup = reference.instructions / best_searched.instructions if best_searched else None
    reduction = 1 - matched.instructions / best_uniform.instructions if matched else None
    return {
        "definitions": DEFINITIONS, "tolerance": tolerance,
        "reference": row(reference, accuracy),
        "best_uniform_within_1pt": row(best_uniform, accuracy),
        "best_searched_within_1pt": row(best_searched, accuracy),
        "speedup_vs_unpruned": speedup,
        "speedup_met": speedup is not None and speedup >= SPEEDUP_TARGET,
        "searched_at_uniform_accuracy": row(matched, accuracy),
        "reduction_vs_best_uniform": reduction,
        "reduction_met": reduction is not None and reduction >= REDUCTION_TARGET,
        "per_uniform": [{**row(u, accuracy), "matched": row(m, accuracy),
                         "reduction": 1 - m.instructions / u.instructions if m else None}
                        for u in sorted(uniform, key=lambda c: c.instructions)
                        for m in [fastest(searched, accuracy, accuracy[u.number])]],
    }
