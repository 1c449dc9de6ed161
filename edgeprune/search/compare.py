"""Searched vs uniform pruning: the speedup and the equal-accuracy reduction, from measured
instructions and one accuracy per candidate (e.g. cross-validated).

Definitions (also written into the JSON):
- reference: the unpruned int8 model (the uniform candidate of ratio 0).
- within one point: accuracy >= reference accuracy - `tolerance`.
- speedup: of the searched candidates with at least 2x fewer instructions than the reference,
  the most accurate; met when it is within one point.
- equal accuracy: the best uniform candidate is the fastest uniform one within one point; of the
  searched candidates with at least 15 % fewer instructions than it, the most accurate; met
  when it is at least as accurate as the best uniform one (equal accuracy).
Both pick the candidate with the most accuracy to spare under the target's instruction limit,
so a fresh score of it (`confirm`) tests the target, not the luck of a marginal candidate. For
information: the fastest searched candidate within one point, and the fastest one at least as
accurate as the best uniform one; and each target's margin with its standard error over paired
scores (`margins`: e.g. per fold draw), which says whether a verdict is decided or a toss.
"""
from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from edgeprune.search.results import Candidate

POINT = 0.01
SPEEDUP_TARGET = 2.0
REDUCTION_TARGET = 0.15
ROLES = ("reference", "best_uniform_within_1pt", "speedup_candidate", "reduction_candidate")
DEFINITIONS = {
    "reference": "the unpruned int8 model (uniform ratio 0)",
    "within_one_point": "accuracy >= reference accuracy - 0.01",
    "speedup": "speedup candidate = the most accurate searched candidate with at least 2x fewer "
               "instructions than the reference; met when it is within one point",
    "equal_accuracy": "best uniform = fastest uniform candidate within one point; reduction "
                      "candidate = the most accurate searched candidate with at least 15 % fewer "
                      "instructions than the best uniform; met when it is at least as accurate "
                      "as the best uniform (reduction = 1 - its instructions / best uniform's)",
}


def fastest(candidates: list[Candidate], accuracy: Mapping[int, float],
            floor: float) -> Candidate | None:
    """The candidate with the fewest instructions whose accuracy is at least `floor`."""
    ok = [c for c in candidates if accuracy[c.number] >= floor - 1e-9]
    return min(ok, key=lambda c: (c.instructions, -accuracy[c.number], c.number), default=None)


def most_accurate(candidates: list[Candidate], accuracy: Mapping[int, float],
                  limit: float) -> Candidate | None:
    """The most accurate candidate with at most `limit` instructions (of equals the fastest)."""
    ok = [c for c in candidates if c.instructions <= limit]
    return min(ok, key=lambda c: (-accuracy[c.number], c.instructions, c.number), default=None)


def row(c: Candidate | None, accuracy: Mapping[int, float]) -> dict | None:
    return None if c is None else {"trial": c.number, "uniform": c.uniform,
                                   "accuracy": accuracy[c.number], "validation": c.accuracy,
                                   "instructions": c.instructions, "channels": c.channels}


def confirm(figures: dict, accuracy: Mapping[int, float], tolerance: float = POINT) -> dict:
    """The candidates that decide both figures, scored again independently (`accuracy`, e.g.
    cross-validated on other folds): do the verdicts hold there? Choosing among many noisy
    scores favours the lucky; a fresh score of the chosen few does not."""
    again = {role: accuracy[figures[role]["trial"]] if figures[role] else None for role in ROLES}
    ref, uniform, fast, lean = (again[role] for role in ROLES)
    return {"accuracy": again,
            "speedup_confirmed": figures["speedup_met"] and fast >= ref - tolerance - 1e-9,
            "reduction_confirmed": figures["reduction_met"] and lean >= uniform - 1e-9}


def paired_gap(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """The mean of a - b over paired scores (e.g. the same fold draws) and its standard error."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two or more paired scores, got {len(a)} and {len(b)}")
    gaps = [x - y for x, y in zip(a, b)]
    return statistics.fmean(gaps), statistics.stdev(gaps) / len(gaps) ** 0.5


def margins(figures: dict, scores: Mapping[int, Sequence[float]],
            tolerance: float = POINT) -> dict:
    """Each target's margin over paired scores of the deciding trials (`scores`: trial -> its
    accuracy on each fold draw, the same draws for all): mean and standard error. Speedup: its
    candidate less (reference - tolerance); reduction: its candidate less the best uniform one.
    Positive: met on average."""
    def margin(role: str, against: str, offset: float) -> dict | None:
        if not figures[role]:
            return None
        ours, theirs = scores[figures[role]["trial"]], scores[figures[against]["trial"]]
        mean, error = paired_gap(ours, [t - offset for t in theirs])
        return {"mean": mean, "standard_error": error, "draws": len(ours)}
    return {"speedup": margin("speedup_candidate", "reference", tolerance),
            "reduction": margin("reduction_candidate", "best_uniform_within_1pt", 0.0)}


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
    fast = most_accurate(searched, accuracy, reference.instructions / SPEEDUP_TARGET)
    lean = most_accurate(searched, accuracy,
                         (1 - REDUCTION_TARGET) * best_uniform.instructions)
    quickest = fastest(searched, accuracy, floor)
    matched = fastest(searched, accuracy, accuracy[best_uniform.number])
    return {
        "definitions": DEFINITIONS, "tolerance": tolerance,
        "reference": row(reference, accuracy),
        "best_uniform_within_1pt": row(best_uniform, accuracy),
        "speedup_candidate": row(fast, accuracy),
        "speedup_vs_unpruned": reference.instructions / fast.instructions if fast else None,
        "speedup_met": fast is not None and accuracy[fast.number] >= floor - 1e-9,
        "reduction_candidate": row(lean, accuracy),
        "reduction_vs_best_uniform": 1 - lean.instructions / best_uniform.instructions
        if lean else None,
        "reduction_met": lean is not None and (accuracy[lean.number]
                                               >= accuracy[best_uniform.number] - 1e-9),
        "fastest_searched_within_1pt": row(quickest, accuracy),
        "fastest_searched_at_uniform_accuracy": row(matched, accuracy),
        "per_uniform": [{**row(u, accuracy), "matched": row(m, accuracy),
                         "reduction": 1 - m.instructions / u.instructions if m else None}
                        for u in sorted(uniform, key=lambda c: c.instructions)
                        for m in [fastest(searched, accuracy, accuracy[u.number])]],
    }
