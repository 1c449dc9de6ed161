"""Benchmark: hardware-aware sparsity search vs uniform pruning on the Cortex-M4 (QEMU mps2-an386).

Models: the digits CNN and the MLPerf Tiny KWS DS-CNN on the digits resized to its 49x10 input
(10 of its 12 outputs used). Per model one study holds the uniform sweep and the searched
candidates, each pruned, finetuned with distillation from the unpruned model (the same recipe
for both), int8-quantized, compiled and measured on QEMU (instructions per inference). The
search optimizes validation top-1; the comparison then scores the uniform candidates and the
searched validation front (widened by the validation noise) on samples the search never saw:
k-fold cross-validation over train + test (Plan.folds; 0: the held-out test split), computes
the issue-7 figures (edgeprune.search.compare has the definitions, repeated in the JSON) and
scores the few deciding candidates again on other folds (confirmation). Resumable: rerun the same
command after an interruption (studies, measurements and fold scores are kept in --out).
    .venv/bin/python scripts/bench/search_digits.py [--models digits_cnn kws_dscnn]
        [--out build/bench]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import edgeprune
from edgeprune._atomic import write_text_atomic
from edgeprune.models import data, zoo
from edgeprune.search.compare import compare, confirm, decisive, margins
from edgeprune.search.crossval import CrossValidation
from edgeprune.search.report import table
from edgeprune.search.results import Candidate, SearchResult, near_front

DEVICE = "qemu:mps2-an386"
SCREEN = 0.02  # candidates more than 2 points below the reference on validation are not scored
SLACK = 0.005  # searched candidates scored: those no faster one beats by more than this (val)


@dataclass(frozen=True)
class Plan:
    """How one model is searched and compared."""

    trials: int  # uniform sweep included
    step: float  # ratio grid of both the uniform sweep and the searched ratios
    max_ratio: float
    finetune_epochs: int
    train_epochs: int
    folds: int  # 0: compare on the held-out test split instead of cross-validation
    repeats: int = 2  # cross-validations (other fold draws) averaged per score

    @property
    def uniform(self) -> tuple[float, ...]:
        return tuple(round(i * self.step, 6) for i in range(int(round(self.max_ratio / self.step)) + 1))


PLANS = {
    "digits_cnn": Plan(trials=80, step=0.05, max_ratio=0.8, finetune_epochs=60, train_epochs=30,
                       folds=5),
    "kws_dscnn": Plan(trials=160, step=0.05, max_ratio=0.8, finetune_epochs=8, train_epochs=12,
                      folds=5),
}


def to_score(result: SearchResult) -> list[Candidate]:
    """The uniform candidates and the searched validation front (widened by SLACK: validation
    is noisy), near the reference."""
    floor = result.reference.accuracy - SCREEN
    front = near_front([c for c in result.candidates if c.uniform is None], SLACK)
    return [c for c in [*result.uniform, *front] if c.accuracy >= floor]


def scorer(name: str, plan: Plan, result: SearchResult, work: Path,
           seeds: range) -> Callable[[Candidate], list[float]]:
    """A candidate's accuracies: `plan.folds`-fold cross-validated on each fold draw in `seeds`;
    or (no folds) the held-out test split."""
    if not plan.folds:
        return lambda c: [c.test_accuracy]
    ds = data.digits(zoo.input_shape(name), 10)
    runs = [CrossValidation(name, ds, result.settings, plan.train_epochs,
                            work / f"crossval-{seed}.json", plan.folds, seed) for seed in seeds]
    return lambda c: [run.score(c.ratios, c.channels).accuracy for run in runs]


def bench(name: str, plan: Plan, out: Path, round_to: int, seed: int) -> dict:
    """Search, compare, print; the model's part of the JSON."""
    started = time.time()
    work = out / f"search_{name}"
    result = edgeprune.search(name, device=DEVICE, trials=plan.trials, out=work,
                              uniform=plan.uniform, seed=seed, resume=True, round_to=round_to,
                              step=plan.step, max_ratio=plan.max_ratio,
                              finetune_epochs=plan.finetune_epochs, train_epochs=plan.train_epochs)
    searched = time.time() - started
    score = scorer(name, plan, result, work, range(plan.repeats))
    draws = {c.number: score(c) for c in to_score(result)}
    accuracy = {n: statistics.fmean(d) for n, d in draws.items()}  # the draws' sizes are equal
    figures = compare(result.candidates, accuracy)
    if plan.folds:  # the deciding few scored again on other fold draws
        again = scorer(name, plan, result, work, range(plan.repeats, 2 * plan.repeats))
        by_number = {c.number: c for c in result.candidates}
        later = {n: again(by_number[n]) for n in decisive(figures)}
        figures["confirmation"] = confirm(figures, {n: statistics.fmean(d)
                                                    for n, d in later.items()})
        figures["margins"] = margins(figures, {n: draws[n] + d for n, d in later.items()})
    kind = (f"{plan.folds}-fold cross-validated top-1 over train+test, {plan.repeats} fold "
            f"draws pooled" if plan.folds
            else "held-out test top-1")
    print(f"\n== {name}: uniform pruning (ratio 0 = the unpruned int8 model)")
    print(table(result.uniform, result.reference))
    print(f"\n== {name}: Pareto front of all candidates (validation)")
    print(table(result.front, result.reference))
    print(f"\n== {name}: compared on {kind} (trial: accuracy, instructions)")
    for r in figures["per_uniform"]:
        m = r["matched"]
        found = (f"searched trial {m['trial']:>3} {m['accuracy']:.2%} {m['instructions']:>10,.0f}"
                 f"  {abs(r['reduction']):.1%} {'fewer' if r['reduction'] >= 0 else 'MORE'}"
                 if m else "no searched candidate as accurate")
        print(f"  uniform {r['uniform']:<5g} {r['accuracy']:.2%} {r['instructions']:>10,.0f}"
              f"  -> {found}")
    verdicts = verdict_lines(figures)
    print("\n".join(f"{name}: {v}" for v in verdicts))
    print(f"{name}: {len(result.candidates)} candidates measured ({result.cache_hits} from the "
          f"architecture cache), {len(result.skipped)} not measured (per-layer latency table), "
          f"search {searched:.0f} s, comparison {time.time() - started - searched:.0f} s")
    shutil.copyfile(work / "pareto.png", out / f"search_{name}.png")
    plot_compared(name, kind, result, accuracy, figures, out / f"search_{name}_compared.png")
    return {**figures, "accuracy_used": kind, "scored_trials": accuracy, "verdicts": verdicts,
            "plan": plan.__dict__, "search_seconds": round(searched, 1),
            "seconds": round(time.time() - started, 1), "search": result.to_dict()}


def plot_compared(name: str, kind: str, result: SearchResult, accuracy: dict[int, float],
                  figures: dict, path: Path) -> None:
    """The compared candidates: accuracy (`kind`) vs measured instructions, both picks marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [c for c in result.candidates if c.number in accuracy]
    uniform = sorted((c for c in scored if c.uniform is not None), key=lambda c: c.instructions)
    searched = [c for c in scored if c.uniform is None]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.plot([c.instructions for c in uniform], [100 * accuracy[c.number] for c in uniform], "s--",
            color="tab:orange", label="uniform pruning")
    ax.scatter([c.instructions for c in searched], [100 * accuracy[c.number] for c in searched],
               color="tab:blue", label="searched (validation front)", zorder=3)
    ref = figures["reference"]
    ax.axhline(100 * (ref["accuracy"] - figures["tolerance"]), color="gray", ls=":",
               label="reference - 1 point")
    for role, marker in (("speedup_candidate", "*"), ("reduction_candidate", "P"),
                         ("best_uniform_within_1pt", "D")):
        if figures[role]:
            r = figures[role]
            ax.scatter([r["instructions"]], [100 * r["accuracy"]], marker=marker, s=160,
                       color="tab:red", zorder=4, label=role.replace("_", " "))
    ax.set_xlabel("measured instructions per inference (qemu:mps2-an386, int8)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(f"{name}: searched vs uniform pruning\n{kind}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def verdict_lines(f: dict) -> list[str]:
    """Both targets (with the confirmation and margins when scored on fold draws), and the
    fastest candidates for information."""
    again = f.get("confirmation")
    ref, u = f["reference"], f["best_uniform_within_1pt"]
    fast, lean = f["speedup_candidate"], f["reduction_candidate"]

    def held(met: bool, confirmed: str, target: str) -> str:
        if again is None:
            return "met (no confirmation: one held-out split)" if met else "NOT met"
        verdict = ("NOT met" if not met else "met, confirmed on other folds" if again[confirmed]
                   else "met, but NOT confirmed on other folds")
        m = f["margins"][target]
        return verdict + (f"; margin over all {m['draws']} fold draws {100 * m['mean']:+.2f} "
                          f"+- {100 * m['standard_error']:.2f} points" if m else "")

    first = (f"{f['speedup_vs_unpruned']:.2f}x fewer instructions than the unpruned int8 model: "
             f"trial {fast['trial']}, {fast['instructions']:,.0f} vs {ref['instructions']:,.0f} "
             f"at {fast['accuracy']:.2%} vs {ref['accuracy']:.2%} (target >= 2x within 1 point: "
             f"{held(f['speedup_met'], 'speedup_confirmed', 'speedup')})"
             if fast else "no searched candidate with 2x fewer instructions (NOT met)")
    second = (f"{f['reduction_vs_best_uniform']:.1%} fewer instructions than the best uniform "
              f"candidate within 1 point (ratio {u['uniform']:g}, {u['accuracy']:.2%}, "
              f"{u['instructions']:,.0f}): trial {lean['trial']}, {lean['accuracy']:.2%}, "
              f"{lean['instructions']:,.0f} (target >= 15 % at equal accuracy: "
              f"{held(f['reduction_met'], 'reduction_confirmed', 'reduction')})"
              if lean else "no searched candidate with 15 % fewer instructions than the best "
              "uniform one (NOT met)")
    quick, matched = f["fastest_searched_within_1pt"], f["fastest_searched_at_uniform_accuracy"]
    info = ("for information: fastest searched within 1 point "
            + (f"trial {quick['trial']} ({ref['instructions'] / quick['instructions']:.2f}x)"
               if quick else "none")
            + "; fastest searched as accurate as the best uniform "
            + (f"trial {matched['trial']} ({1 - matched['instructions'] / u['instructions']:.1%}"
               " fewer)" if matched else "none"))
    return [first, second, info]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(PLANS), default=sorted(PLANS))
    parser.add_argument("--out", default="build/bench")
    parser.add_argument("--round-to", type=int, default=1,
                        help="channel multiple of both uniform and searched candidates "
                        "(default 1: every count open to both; the kernels' fast path at "
                        "multiples of 4 is for the search to find by measuring)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # small models on a shared machine: more threads only spin
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    report = {name: bench(name, PLANS[name], out, args.round_to, args.seed)
              for name in args.models}
    path = out / "search_digits.json"
    write_text_atomic(path, json.dumps({"device": DEVICE, "round_to": args.round_to,
                                        "models": report}, indent=1) + "\n")
    print(f"\nwrote {path}, search_<model>.png (validation) and search_<model>_compared.png "
          f"beside it; reports in "
          f"{out}/search_<model>/report.md")


if __name__ == "__main__":
    main()
