"""Why tests/conftest.py gives each test process one compute thread: the digits CNN trained by two
processes at once (as `scripts/test` runs two xdist workers), with 1 and with 2 torch threads each.

    .venv/bin/python scripts/bench/test_threads.py [EPOCHS]

Prints the wall time of each process per thread count. On a 2-core machine two processes with
2 threads each spin against each other (measured: 17-25 s against about 1 s for 3 epochs).
"""
from __future__ import annotations

import subprocess
import sys
import time

CHILD = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from edgeprune.models import data, zoo
from edgeprune.models.train import Recipe, train
ds = data.digits()
train(zoo.build_model("digits_cnn"), ds.x_train[:64], ds.y_train[:64], Recipe(epochs=1))  # warm-up
start = time.perf_counter()
train(zoo.build_model("digits_cnn"), ds.x_train, ds.y_train, Recipe(epochs=int(sys.argv[2])))
print(f"{time.perf_counter() - start:.2f}")
"""


def concurrent(threads: int, epochs: int) -> list[float]:
    """Wall seconds of two processes training at the same time with `threads` torch threads each."""
    command = [sys.executable, "-c", CHILD, str(threads), str(epochs)]
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    return [float(child.communicate()[0].split()[-1]) for child in children]


def main() -> None:
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    for threads in (1, 2):
        started = time.perf_counter()
        times = concurrent(threads, epochs)
        print(f"{threads} thread(s) per process: {times[0]:.2f} s and {times[1]:.2f} s "
              f"({time.perf_counter() - started:.1f} s with start-up)")


if __name__ == "__main__":
    main()
