"""Benchmark: how far any search could go on issue 7's second target for the digits CNN.

The search benchmark (search_digits.py) compares what the search found with uniform pruning. This
one asks whether anything on the search's grid could meet the target at all: it takes every
channel plan on the grid (one ratio per group, 0 to 0.8 in steps of 0.05, any channel count),
finds the plans that need at most 85 % of the best uniform candidate's instructions, and scores
the ones that cannot grow a group by one grid step without exceeding that (accuracy rises with
channels, so the best plan under the limit is among them) exactly as the search benchmark
scores candidates: pruned, finetuned with distillation, int8, 5-fold cross-validated over
train+test, fold draws pooled (--draws; the search benchmark's two by default). The verdict
gives the paired gap between the best plan and the best uniform one, draw by draw, with its
standard error: two draws pick the best uniform candidate by the luck of the draw.

Instructions are measured on QEMU. A chain model's kernel depends only on the channel counts
of its input and output, so measuring plans that cover every pair of neighbouring counts gives
every plan's total; each scored plan is measured again whole, and the two must agree.
Resumable: measurements and scores are kept in --out.
    .venv/bin/python scripts/bench/search_ceiling.py [--out build/bench-ceiling] [--draws 2]
        [--workers 1]
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import itertools
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from edgeprune._atomic import write_text_atomic
from edgeprune.models import data, stats, zoo
from edgeprune.prune.structured import prune_channels
from edgeprune.quantize import quantize
from edgeprune.search import space
from edgeprune.search.compare import POINT, REDUCTION_TARGET, paired_gap
from edgeprune.search.crossval import CrossValidation
from edgeprune.search.measure import measure
from edgeprune.search.settings import Settings
from search_digits import DEVICE, PLANS

MODEL = "digits_cnn"
AGREEMENT = 0.001  # composed vs measured instructions (the runtime's own share varies a little)
Counts = tuple[int, ...]


def pruned(base: nn.Module, shape: tuple[int, ...], ratios: dict[str, float]) -> nn.Module:
    """A copy of `base` with `ratios` (group -> fraction) removed, any channel count."""
    model = copy.deepcopy(base)
    if any(ratios.values()):
        prune_channels(model, shape, {n: r for n, r in ratios.items() if r}, "l1", 1)
    return model


def channel_choices(base: nn.Module, shape: tuple[int, ...], names: list[str],
                    ratios: list[float]) -> list[dict[int, float]]:
    """Per group: each channel count the grid reaches -> the smallest ratio reaching it."""
    choices = []
    for name in names:
        counts: dict[int, float] = {}
        for ratio in ratios:
            layer = stats.count(pruned(base, shape, {name: ratio}), shape).by_name()[name]
            counts.setdefault(layer.output_shape[0], ratio)
        choices.append(counts)
    return choices


class Costs:
    """Measured instructions per kernel of channel plans, kept in a JSON file."""

    def __init__(self, base: nn.Module, shape: tuple[int, ...], names: list[str],
                 choices: list[dict[int, float]], calibration: np.ndarray, path: Path) -> None:
        self.base, self.shape, self.names, self.choices = base, shape, names, choices
        self.calibration, self.path = calibration, path
        self.kernels: dict[str, list[float]] = (json.loads(path.read_text())
                                                if path.is_file() else {})

    def ratios(self, counts: Counts) -> dict[str, float]:
        return {n: self.choices[i][c] for i, (n, c) in enumerate(zip(self.names, counts))}

    def measured(self, counts: Counts) -> list[float]:
        """Instructions of each kernel of the plan, measured on QEMU (once)."""
        key = "/".join(map(str, counts))
        if key not in self.kernels:
            with tempfile.TemporaryDirectory(prefix="ceiling-") as scratch:
                onnx_path = Path(scratch) / "model.int8.onnx"
                with contextlib.redirect_stderr(io.StringIO()):
                    quantize(pruned(self.base, self.shape, self.ratios(counts)), self.calibration,
                             onnx_path, input_shape=self.shape, samples=len(self.calibration),
                             eval_samples=4, write_report=False)
                m = measure(onnx_path, DEVICE, Path(scratch) / "firmware")
            self.kernels[key] = [m.latency, *m.layer_latency]
            write_text_atomic(self.path, json.dumps(self.kernels) + "\n")
        return self.kernels[key]

    def composed(self) -> dict[Counts, float]:
        """Every plan's instructions, from plans covering each pair of neighbouring counts of the
        three groups: kernel 0 depends on group 0, kernel k (1, 2) on groups k-1 and k, the
        later ones (pooling, dense) on group 2; the non-kernel rest is the largest seen."""
        first, middle, last = (sorted(c) for c in self.choices)
        parts: dict[tuple[int, Counts], float] = {}
        rest = 0.0
        cover = [(first[j % len(first)], count, last[j % len(last)])
                 for count in middle for j in range(max(len(first), len(last)))]
        for plan in tqdm(cover, desc="instructions", unit="plan"):
            total, *kernels = self.measured(plan)
            rest = max(rest, total - sum(kernels))
            for k, cost in enumerate(kernels):
                parts[(k, self.depends(k, plan))] = cost
        return {plan: rest + sum(parts[(k, self.depends(k, plan))]
                                 for k in range(self.kernel_count()))
                for plan in itertools.product(first, middle, last)}

    def depends(self, kernel: int, plan: Counts) -> Counts:
        last = len(plan) - 1
        return plan[max(0, kernel - 1):kernel + 1] if kernel <= last else plan[last:]

    def kernel_count(self) -> int:
        return len(next(iter(self.kernels.values()))) - 1


def maximal(plans: dict[Counts, float], grids: list[list[int]], limit: float) -> list[Counts]:
    """Plans within `limit` that cannot grow any group by one grid step and stay within it."""
    within = {p for p, cost in plans.items() if cost <= limit}

    def grown(p: Counts):
        for g, count in enumerate(p):
            i = grids[g].index(count)
            if i + 1 < len(grids[g]):
                yield p[:g] + (grids[g][i + 1],) + p[g + 1:]
    return sorted(p for p in within if not any(q in within for q in grown(p)))


def settings() -> Settings:
    """How the search benchmark makes each candidate (so the scores are the same)."""
    plan = PLANS[MODEL]
    return Settings(device=DEVICE, round_to=1, max_ratio=plan.max_ratio, step=plan.step,
                    finetune_epochs=plan.finetune_epochs, finetune_lr=5e-3, distill=0.8)


Job = tuple[dict[str, float], dict[str, int]]  # one plan: ratios, channels (its cache key)


def score_draw(out: Path, seed: int, jobs: list[Job]) -> list[float]:
    """Each plan's cross-validated accuracy on fold draw `seed` (kept in crossval-<seed>.json)."""
    torch.set_num_threads(1)
    plan = PLANS[MODEL]
    run = CrossValidation(MODEL, data.digits(zoo.input_shape(MODEL), 10), settings(),
                          plan.train_epochs, out / f"crossval-{seed}.json", plan.folds, seed)
    return [run.score(ratios, channels).accuracy
            for ratios, channels in tqdm(jobs, desc=f"draw {seed}", unit="plan", leave=False)]


def score_plans(out: Path, draws: int, workers: int, jobs: list[Job],
                desc: str) -> list[list[float]]:
    """Per plan, its accuracy on each of `draws` fold draws; the draws run in `workers`
    processes."""
    by_draw: dict[int, list[float]] = {}
    spawn = multiprocessing.get_context("spawn")  # no fork of a process torch has threaded
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        pending = {pool.submit(score_draw, out, seed, jobs): seed for seed in range(draws)}
        for done in tqdm(as_completed(pending), total=draws, desc=desc, unit="draw"):
            by_draw[pending[done]] = done.result()
    return [[by_draw[seed][i] for seed in range(draws)] for i in range(len(jobs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/bench-ceiling")
    parser.add_argument("--draws", type=int, default=PLANS[MODEL].repeats,
                        help="fold draws pooled per score (default: the search benchmark's)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes scoring fold draws side by side")
    args = parser.parse_args()
    if args.draws < 2:
        parser.error("--draws: at least 2 (the gap's standard error needs them)")
    torch.set_num_threads(1)
    started = time.time()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    plan = PLANS[MODEL]
    shape = zoo.input_shape(MODEL)
    base = zoo.build_model(MODEL).eval()  # instruction counts do not depend on the weights
    names = space.groups(base, shape)
    if len(names) != 3:
        raise SystemExit(f"{MODEL}: {len(names)} prunable groups; this benchmark handles 3")
    choices = channel_choices(base, shape, names, space.grid(plan.max_ratio, plan.step))
    costs = Costs(base, shape, names, choices, data.digits(shape, 10).x_train[:64],
                  out / "instructions.json")

    def rows(plans: list[Counts], desc: str) -> list[dict]:
        jobs = []
        for counts in plans:
            ratios = costs.ratios(counts)
            layers = stats.count(pruned(base, shape, ratios), shape).layers
            jobs.append((ratios, {layer.name: layer.output_shape[0] for layer in layers}))
        scores = score_plans(out, args.draws, args.workers, jobs, desc)
        return [{"channels": list(counts), "instructions": costs.measured(counts)[0],
                 "accuracy": float(np.mean(draws)), "draws": draws}
                for counts, draws in zip(plans, scores)]

    uniform_plans = []
    for ratio in plan.uniform:
        model = pruned(base, shape, dict.fromkeys(names, ratio))
        counts = stats.count(model, shape).by_name()
        uniform_plans.append(tuple(counts[n].output_shape[0] for n in names))
    uniform = [{"ratio": ratio, **r}
               for ratio, r in zip(plan.uniform, rows(uniform_plans, "uniform"))]
    floor = uniform[0]["accuracy"] - POINT
    best = min((u for u in uniform if u["accuracy"] >= floor - 1e-9),
               key=lambda u: u["instructions"])
    limit = (1 - REDUCTION_TARGET) * best["instructions"]
    plans = costs.composed()
    within = sum(cost <= limit for cost in plans.values())
    grids = [sorted(c) for c in choices]
    scored = rows(maximal(plans, grids, limit), "within the limit")
    for r in scored:
        composed = plans[tuple(r["channels"])]
        if abs(r["instructions"] / composed - 1) > AGREEMENT:
            raise SystemExit(f"{r['channels']}: composed {composed:,.0f} instructions, measured "
                             f"{r['instructions']:,.0f}: the chain assumption does not hold")
    scored.sort(key=lambda r: -r["accuracy"])
    top = scored[0]
    print(f"{MODEL}: uniform pruning ({plan.folds}-fold cross-validated, {args.draws} draws)")
    for u in uniform:
        print(f"  ratio {u['ratio']:<5g} {'/'.join(map(str, u['channels'])):>9} "
              f"{u['accuracy']:.2%} {u['instructions']:>10,.0f}")
    print(f"best uniform within 1 point: ratio {best['ratio']:g}, {best['accuracy']:.2%}, "
          f"{best['instructions']:,.0f}; limit {limit:,.0f} instructions")
    print(f"{len(plans)} plans on the grid, {within} within the limit, {len(scored)} that cannot "
          f"grow within it, scored:")
    for r in scored:
        print(f"  {'/'.join(map(str, r['channels'])):>9} {r['accuracy']:.2%} "
              f"{r['instructions']:>10,.0f}")
    reachable = top["accuracy"] >= best["accuracy"] - 1e-9
    gap, error = paired_gap(top["draws"], best["draws"])
    verdict = (f"the most accurate plan within the limit, {'/'.join(map(str, top['channels']))}, "
               f"scores {top['accuracy']:.2%} against the best uniform's {best['accuracy']:.2%} "
               f"(paired gap {100 * gap:+.2f} +- {100 * error:.2f} points over {args.draws} fold "
               f"draws): target 2 is {'within reach' if reachable else 'out of reach'} "
               f"on this grid")
    print(verdict)
    path = out / "search_ceiling.json"
    write_text_atomic(path, json.dumps({
        "model": MODEL, "device": DEVICE, "plan": plan.__dict__, "draws": args.draws,
        "uniform": uniform, "best_uniform": best, "limit": limit, "plans_on_grid": len(plans),
        "plans_within_limit": within, "scored": scored, "reachable": reachable,
        "gap": gap, "gap_standard_error": error, "verdict": verdict,
        "seconds": round(time.time() - started, 1)}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
