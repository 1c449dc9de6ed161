"""Benchmark: hardware-aware sparsity search vs uniform pruning, digits CNN, Cortex-M4 on QEMU.

All candidates (the uniform sweep 0.0..0.8 and the searched ones) come from one study, each
pruned, finetuned, int8-quantized, compiled and measured on QEMU (instructions per inference).
Accuracy is validation top-1. Targets (issue 7): >= 2x fewer instructions than the unpruned int8
model within 1 point, and >= 15 % fewer than the best uniform candidate at equal accuracy.
    .venv/bin/python scripts/bench/search_digits.py [--trials 40] [--out build/bench]
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import edgeprune
from edgeprune._atomic import write_text_atomic
from edgeprune.search.report import table
from edgeprune.search.results import Candidate

GRID = tuple(round(0.1 * i, 1) for i in range(9))
POINT = 0.01  # one accuracy point


def fastest(candidates: list[Candidate], min_accuracy: float) -> Candidate | None:
    ok = [c for c in candidates if c.accuracy >= min_accuracy - 1e-9]
    return min(ok, key=lambda c: (c.instructions, -c.accuracy), default=None)


def equal_accuracy(u: Candidate, searched: list[Candidate]) -> dict:
    """The fastest searched candidate at least as accurate as uniform candidate `u`."""
    match = fastest(searched, u.accuracy)
    return {"uniform": u.uniform, "accuracy": u.accuracy, "instructions": u.instructions,
            "searched_trial": match.number if match else None,
            "searched_instructions": match.instructions if match else None,
            "reduction": 1 - match.instructions / u.instructions if match else None}


def targets(candidates: list[Candidate]) -> dict:
    """The two acceptance figures, computed from the measured candidates."""
    uniform = [c for c in candidates if c.uniform is not None]
    searched = [c for c in candidates if c.uniform is None]
    unpruned = next(c for c in uniform if c.uniform == 0.0)
    floor = unpruned.accuracy - POINT
    best_uniform = fastest(uniform, floor)
    best_searched = fastest(searched, floor)
    matched = fastest(searched, best_uniform.accuracy)
    return {
        "equal_accuracy": [equal_accuracy(u, searched) for u in uniform],
        "unpruned": unpruned.to_dict(),
        "best_uniform_within_1pt": best_uniform.to_dict(),
        "best_searched_within_1pt": best_searched.to_dict() if best_searched else None,
        "speedup_vs_unpruned": (unpruned.instructions / best_searched.instructions
                                if best_searched else None),
        "searched_at_uniform_accuracy": matched.to_dict() if matched else None,
        "reduction_vs_best_uniform": (1 - matched.instructions / best_uniform.instructions
                                      if matched else None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40, help="uniform sweep included")
    parser.add_argument("--out", default="build/bench")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    work = out / "search_digits"
    started = time.time()
    result = edgeprune.search("digits_cnn", device="qemu:mps2-an386", trials=args.trials,
                              out=work, uniform=GRID, seed=args.seed, resume=True)
    figures = targets(result.candidates)
    print(f"\nuniform pruning (ratio 0.0 = the unpruned int8 model), validation top-1:")
    print(table(result.uniform, result.reference))
    print("\nPareto front of all candidates:")
    print(table(result.front, result.reference))
    speedup, reduction = figures["speedup_vs_unpruned"], figures["reduction_vs_best_uniform"]
    verdict_1 = (f"{speedup:.2f}x fewer instructions than unpruned int8 within 1 point "
                 f"(target >= 2x: {'met' if speedup >= 2 else 'NOT met'})"
                 if speedup else "no searched candidate within 1 point of the unpruned model")
    verdict_2 = (f"{reduction:.1%} fewer instructions than the best uniform candidate at its "
                 f"accuracy (target >= 15 %: {'met' if reduction >= 0.15 else 'NOT met'})"
                 if reduction is not None else
                 "no searched candidate reaches the best uniform candidate's accuracy")
    print("\nat equal accuracy: uniform ratio, its top-1 and instructions, the fastest searched "
          "candidate at least as accurate")
    for row in figures["equal_accuracy"]:
        found = (f"trial {row['searched_trial']:>3} {row['searched_instructions']:>10,.0f}  "
                 f"{row['reduction']:.1%} fewer" if row["searched_trial"] is not None else "none")
        print(f"  {row['uniform']:.1f}  {row['accuracy']:.2%}  {row['instructions']:>10,.0f}  "
              f"-> {found}")
    print(f"\nsearch: {verdict_1}\nsearch: {verdict_2}")
    print(f"{len(result.candidates)} candidates, {result.cache_hits} from the cache, "
          f"{time.time() - started:.0f} s")
    write_text_atomic(out / "search_digits.json", json.dumps(
        {**figures, "verdicts": [verdict_1, verdict_2], "search": result.to_dict(),
         "seconds": round(time.time() - started, 1)}, indent=1) + "\n")
    shutil.copyfile(work / "pareto.png", out / "search_digits.png")
    print(f"wrote {out / 'search_digits.json'}, {out / 'search_digits.png'}, {work / 'report.md'}")


if __name__ == "__main__":
    main()
