"""Benchmark: criterion x channel ratio -> test accuracy, MACs, params on digits-trained models.

Each zoo model is trained on the digits (shaped for its input), then pruned one-shot with each
criterion and ratio and finetuned; the table and a JSON file report the results. Usage:
    .venv/bin/python scripts/bench/prune_digits.py [--models digits_cnn ic_resnet8] [--out PATH]
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

from edgeprune._atomic import write_text_atomic
from edgeprune.models import data, stats, zoo
from edgeprune.models.metrics import evaluate
from edgeprune.models.train import Recipe, train
from edgeprune.prune.structured import prune_channels

PLANS = {  # model: (train recipe, finetune recipe, criteria, channel ratios)
    "digits_cnn": (Recipe(epochs=30), Recipe(epochs=20, lr=5e-3),
                   ("l1", "l2", "taylor", "random", "bn_scale", "fpgm", "lamp"), (0.3, 0.5)),
    "ic_resnet8": (Recipe(epochs=10), Recipe(epochs=6, lr=3e-3),
                   ("l1", "fpgm", "random"), (0.3, 0.5)),
}


def bench_model(name: str) -> list[dict]:
    """Rows for one model: the unpruned baseline, then one row per criterion and ratio."""
    fit, finetune, criteria, ratios = PLANS[name]
    shape = zoo.input_shape(name)
    ds = data.digits(shape)
    base = train(zoo.build_model(name), ds.x_train, ds.y_train, fit)
    counts = stats.count(base, shape)
    accuracy = evaluate(base, ds.x_test, ds.y_test, 10).accuracy
    rows = [{"model": name, "criterion": "-", "ratio": 0.0, "accuracy": accuracy,
             "macs": counts.macs, "params": counts.params, "macs_reduction": 0.0,
             "accuracy_drop_points": 0.0}]
    for criterion in criteria:
        for ratio in ratios:
            model = copy.deepcopy(base)
            report = prune_channels(model, shape, ratio, criterion, round_to=4,
                                    x=ds.x_train, y=ds.y_train)
            train(model, ds.x_train, ds.y_train, finetune)
            pruned = evaluate(model, ds.x_test, ds.y_test, 10).accuracy
            rows.append({"model": name, "criterion": criterion, "ratio": ratio,
                         "accuracy": pruned, "macs": report.macs_after,
                         "params": report.params_after,
                         "macs_reduction": report.macs_reduction,
                         "accuracy_drop_points": 100 * (accuracy - pruned)})
            print_row(rows[-1])
    return rows


def print_row(row: dict) -> None:
    print(f"{row['model']:<11} {row['criterion']:<9} {row['ratio']:>5.2f} "
          f"{row['accuracy']:>8.2%} {row['accuracy_drop_points']:>+6.2f} "
          f"{row['macs']:>10} {row['macs_reduction']:>7.1%} {row['params']:>8}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(PLANS), default=sorted(PLANS))
    parser.add_argument("--out", default="build/bench/prune_digits.json")
    args = parser.parse_args()
    print(f"{'model':<11} {'criterion':<9} {'ratio':>5} {'test acc':>8} {'drop':>6} "
          f"{'MACs':>10} {'-MACs':>7} {'params':>8}")
    started = time.time()
    rows = []
    for name in args.models:
        model_rows = bench_model(name)
        print_row(model_rows[0])
        rows += model_rows
    ok = [r for r in rows if r["macs_reduction"] >= 0.5 and r["accuracy_drop_points"] <= 1.0]
    print(f"{len(ok)} pruned models with >= 50 % fewer MACs within 1 point of their baseline; "
          f"{time.time() - started:.0f} s")
    write_text_atomic(Path(args.out), json.dumps({"rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
