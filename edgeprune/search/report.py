"""The search's outputs: a terminal table of the Pareto front, a PNG plot and a Markdown report."""
from __future__ import annotations

import io
import math
from pathlib import Path

from edgeprune._atomic import write_bytes_atomic, write_text_atomic
from edgeprune.search.results import Candidate, SearchResult
from edgeprune.task import metric_label


def kib(n: int) -> str:
    return f"{n / 1024:.1f}"


def score(value: float, metric: str) -> str:
    """A score as reports print it: top-1 in percent, other metrics as numbers."""
    return f"{value:.2%}" if metric == "accuracy" else f"{value:.4f}"


def scale(metric: str) -> float:
    """The factor the plot multiplies scores by (top-1 in percent)."""
    return 100.0 if metric == "accuracy" else 1.0


def agreement(rows: list[Candidate]) -> str:
    """The worst relative error between device and onnxruntime outputs among `rows`."""
    if not rows:
        return "-"
    worst = max(rows, key=lambda c: c.relative_error)
    verdict = "agree" if worst.relative_error < 0.05 else "DISAGREE (compiler issue, reported)"
    return f"largest relative error {worst.relative_error:.3g} (trial {worst.number}): {verdict}"


def table(rows: list[Candidate], reference: Candidate | None = None, metric: str = "accuracy",
          unit: str = "instructions") -> str:
    """Fixed-width rows: trial, validation and test score (`metric`), latency in the device's
    `unit` (and speed-up vs `reference`), memory, channels per layer."""
    head = f"val {metric_label(metric)}"
    lines = [f"{'trial':>5} {head:>9} {'test':>7} {unit:>12} {'speed-up':>8} "
             f"{'flash KiB':>9} {'RAM KiB':>8}  {'kind':<16} channels"]
    for c in rows:
        speedup = f"{reference.instructions / c.instructions:.2f}x" if reference else "-"
        kind = f"uniform {c.uniform:g}" if c.uniform is not None else "searched"
        kind += f" p{c.patch_grid}" if c.patch_grid else ""
        kind += "" if c.feasible else " (over)"
        test = score(c.test_accuracy, metric) if c.test_accuracy is not None else "-"
        lines.append(f"{c.number:>5} {score(c.accuracy, metric):>9} {test:>7} {c.instructions:>12,.0f} "
                     f"{speedup:>8} "
                     f"{kib(c.flash_bytes):>9} {kib(c.ram_bytes):>8}  {kind:<16} "
                     f"{'/'.join(str(n) for n in c.channels.values())}")
    return "\n".join(lines)


def plot(result: SearchResult, path: Path) -> None:
    """The task's metric vs measured latency (the device's unit): all candidates, the Pareto front annotated
    with flash and RAM, the uniform-pruning baseline, the latency budget and the chosen one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = scale(result.metric)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    others = [c for c in result.candidates if c.uniform is None]
    ax.scatter([c.instructions for c in others], [k * c.accuracy for c in others], s=18,
               c=["tab:blue" if c.feasible else "lightgray" for c in others],
               label="searched (gray: over budget)")
    uniform = sorted(result.uniform, key=lambda c: c.instructions)
    ax.plot([c.instructions for c in uniform], [k * c.accuracy for c in uniform], "s--",
            color="tab:orange", label="uniform pruning (baseline)")
    for c in uniform:
        ax.annotate(f"{c.uniform:g}", (c.instructions, k * c.accuracy), fontsize=7,
                    textcoords="offset points", xytext=(4, -10), color="tab:orange")
    front = result.front
    ax.step([c.instructions for c in front], [k * c.accuracy for c in front], "o-",
            where="post", color="tab:green", label="Pareto front (within budgets)")
    for c in front:
        ax.annotate(f"F {kib(c.flash_bytes)}K R {kib(c.ram_bytes)}K",
                    (c.instructions, k * c.accuracy), fontsize=7,
                    textcoords="offset points", xytext=(4, 4))
    if result.budgets.max_latency:
        ax.axvline(result.budgets.max_latency, color="tab:red", ls=":", label="latency budget")
    if result.chosen:
        ax.scatter([result.chosen.instructions], [k * result.chosen.accuracy], marker="*",
                   s=220, color="tab:red", zorder=5, label="chosen")
    ax.set_xlabel(f"measured {result.unit} per inference ({result.settings.device}, "
                  f"{result.settings.precision})")
    ax.set_ylabel(f"validation {result.metric_label}" + (" (%)" if k == 100 else ""))
    ax.set_title(f"{result.model}: hardware-aware sparsity search, {len(result.candidates)} trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())


def validation_noise(result: SearchResult) -> str:
    """The report line saying how much validation top-1 moves by chance: one sample, and the
    binomial standard error at the chosen (else the unpruned) candidate's accuracy; for another
    metric the validation size only."""
    n = result.validation_samples
    at = result.chosen or result.reference
    if not n:
        return (f"- validation noise: unknown ({result.metric_label} comes from the task's "
                "evaluate, on data edgeprune does not see)")
    if result.metric != "accuracy":
        return (f"- validation noise: {n} validation samples; the standard error of "
                f"{result.metric_label} is not estimated (only top-1's, a binomial)")
    if at is None:
        return "- validation noise: unknown (no candidate)"
    error = math.sqrt(at.accuracy * (1 - at.accuracy) / n)
    return (f"- validation noise: {n} samples, one sample = {1 / n:.2%}; standard error at "
            f"{at.accuracy:.2%} = {error:.2%}, smaller accuracy differences are within chance")


def latency_table(result: SearchResult) -> str:
    """The report line saying whether the learned per-layer latency table skipped candidates."""
    if not result.skipped:
        return "- per-layer latency table: not used (every candidate was measured)"
    return (f"- per-layer latency table (learned from the measured candidates): used, "
            f"{len(result.skipped)} candidates not measured (estimated, within the table's error "
            f"margin, over the latency budget or dominated; listed below, outside the front)")


def scored_by(result: SearchResult) -> str:
    """Who scores the candidates: edgeprune's default metric or the task's evaluate."""
    return "the task's evaluate" if not result.validation_samples else "edgeprune's default metric"


def tested(result: SearchResult) -> str:
    """What the report's test column holds."""
    if any(c.test_accuracy is not None for c in result.candidates):
        return "the held-out test split (reported, never used to choose)"
    return "none (the task has no test split, or scores with its own evaluate)"


def rescore_lines(rescored: dict, metric: str, unit: str = "instructions") -> list[str]:
    """Lines for people: each candidate's per-fold scores, mean +- standard error, and the gap."""
    lines = [f"k-fold re-scoring ({rescored['k']} folds, validation split left out, {metric}; the model "
             f"retrained per fold for {rescored['train_epochs']} epochs):"]
    for key in ("chosen", "neighbour"):
        e = rescored[key]
        kind = f"uniform {e['uniform']:g}" if e["uniform"] is not None else "searched"
        lines.append(f"  {e['role']:<17} trial {e['trial']} ({kind}, {e['instructions']:,.0f} {unit}): "
                     f"{e['mean']:.4f} +- {e['standard_error']:.4f}  folds "
                     + " ".join(f"{s:.4f}" for s in e["scores"]))
    gap = rescored["gap"]
    verdict = ("a real gain" if gap["mean"] > 2 * gap["standard_error"] else
               "a real loss" if gap["mean"] < -2 * gap["standard_error"] else "within noise (|gap| <= 2 SE)")
    lines.append(f"  gap chosen - neighbour: {gap['mean']:+.4f} +- {gap['standard_error']:.4f}: {verdict}")
    return lines


def markdown(result: SearchResult, path: Path) -> None:
    """The report: settings, budgets, outcome, Pareto table, baseline table, the chosen one."""
    s = result.settings
    fp32 = "" if s.precision == "int8" else (
        "\n**fp32 fallback: candidates were measured as float models, not int8.**\n")
    parts = [
        f"# Sparsity search: {result.model} on {s.device}\n", fp32,
        f"- study `{result.study}` in `{result.storage}`, sampler {result.sampler}",
        f"- {result.finished} finished trials ({len(result.candidates)} measured or cached, "
        f"{result.cache_hits} from the architecture cache, {len(result.failed)} failed, "
        f"{len(result.skipped)} not measured)",
        f"- per candidate: {s.criterion} structured pruning (ratios 0..{s.max_ratio} step "
        f"{s.step}, channels multiples of {s.round_to}), {s.finetune.epochs} finetune epochs "
        + ("by the task's finetune, " if result.task_finetune else
           f"(distillation weight {s.finetune.distill} from the unpruned model), ")
        + f"{s.precision}, compiled and run once on the device ({result.unit}: {result.method or 'its count'})",
        f"- score: {result.metric_label} on the validation split ({scored_by(result)}; onnxruntime "
        f"on the host; the search optimizes it), test: {tested(result)}; latency: {result.unit} "
        "per inference measured on the device; flash/RAM from the ELF",
        validation_noise(result),
        latency_table(result),
        f"- budgets: {result.budgets.describe(result.unit)}",
        f"- device outputs vs onnxruntime (random inputs): {agreement(result.candidates)}\n",
        f"**{result.message}**\n",
        "## Pareto front (within budgets)\n", "```", table(result.front, result.reference, result.metric, result.unit),
        "```\n", "## Uniform pruning (baseline)\n", "```",
        table(result.uniform, result.reference, result.metric, result.unit), "```\n",
    ]
    if result.failed:
        parts += ["## Failed candidates\n"]
        for n, error in result.failed:
            parts.append(f"- trial {n}: {error}")
            if n in result.tracebacks:
                parts += ["", "```", result.tracebacks[n].rstrip(), "```"]
        parts.append("")
    if result.skipped:
        parts += ["## Not measured (per-layer latency table)\n",
                  *[f"- trial {n}: {e}" for n, e in result.skipped], ""]
    if result.chosen:
        parts += ["## Chosen candidate\n",
                  f"trial {result.chosen.number}; ratios "
                  + ", ".join(f"`{k}` {v:g}" for k, v in result.chosen.ratios.items()),
                  f"\nexported to `{result.exported}`\n"]
    if result.rescore:
        parts += ["## k-fold re-scoring\n", "```", *rescore_lines(result.rescore, result.metric_label, result.unit), "```\n"]
    parts += ["![Pareto front](pareto.png)\n"]
    write_text_atomic(path, "\n".join(parts))
