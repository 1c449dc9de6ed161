"""Shared fixtures: compiled models are cached per test session (compiling costs seconds)."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest

# One compute thread per test process (CI runs two xdist workers on two cores): more threads only
# spin against each other on these small models. Before torch loads, and inherited by the CLI
# subprocesses tests start; an OMP_NUM_THREADS or TVM_NUM_THREADS already set is kept.
THREADS = int(os.environ.setdefault("OMP_NUM_THREADS", "1"))
os.environ.setdefault("TVM_NUM_THREADS", str(THREADS))

from edgeprune.compile.api import CompiledModel, compile_model  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """torch may have been loaded before the variable was set (by a plugin): set its count too."""
    import torch

    torch.set_num_threads(THREADS)


@pytest.fixture(scope="session", autouse=True)
def results_store(tmp_path_factory) -> Path:
    """The default results store of profile and search ($EDGEPRUNE_STORE) during the tests: a
    throw-away file, never the user's. A test that needs a store of its own passes one."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("store") / "results.sqlite"
        patch.setenv("EDGEPRUNE_STORE", str(path))
        yield path


@pytest.fixture(scope="session")
def compiled(tmp_path_factory) -> Callable[..., CompiledModel]:
    """compiled(model, board="mps2-an386", backend="llvm", rounding="double", **options) -> CompiledModel,
    compiled once; options are compile_model's (kernels, weights)."""
    cache: dict[tuple, CompiledModel] = {}

    def get(model: str | Path, board: str = "mps2-an386", backend: str = "llvm",
            rounding: str = "double", **options) -> CompiledModel:
        key = (str(model), board, backend, rounding, *sorted(options.items()))
        if key not in cache:
            out = tmp_path_factory.mktemp("compiled") / f"{Path(str(model)).stem}-{board}-{backend}-{rounding}"
            cache[key] = compile_model(model, board, out, backend=backend, rounding=rounding, **options)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def quantized(tmp_path_factory) -> Callable[[str], Path]:
    """quantized(zoo_name) -> a QDQ int8 ONNX file (onnxruntime static quantizer, digits calibration),
    made once for all xdist workers (in the folder their temporary folders share)."""
    from filelock import FileLock

    from edgeprune.quantize import quantize

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base

    def get(name: str) -> Path:
        out = shared / f"{name}.int8.onnx"
        with FileLock(f"{out}.lock"):
            if not out.exists():
                # The file depends on the calibration only: evaluate on a few samples (the full split is 360).
                quantize(name, "digits", out, train_epochs=0, samples=32, eval_samples=8, write_report=False)
        return out

    return get


@pytest.fixture(scope="session")
def host_reference() -> Callable[[CompiledModel, Sequence[np.ndarray]], list[np.ndarray]]:
    """host_reference(model, inputs) -> compile.host.host_outputs(model, inputs), with the host build
    (up to 8 s for a zoo model) made once per graph and rounding, whatever the board."""
    from edgeprune.compile.host import host_build

    cache: dict[tuple[str, str], Callable[..., list[np.ndarray]]] = {}

    def get(model: CompiledModel, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        graph = onnx.load(model.onnx)
        rounding = model.manifest.get("options", {}).get("rounding", "double")
        key = (hashlib.sha256(graph.SerializeToString()).hexdigest(), rounding)
        if key not in cache:
            cache[key] = host_build(graph, rounding)
        return cache[key](*inputs)

    return get


@pytest.fixture(scope="session")
def digits():
    """The scikit-learn digits as 1x8x8 images, split into train, validation and test."""
    from edgeprune.models import data

    return data.digits()


@pytest.fixture(scope="session")
def trained(digits):
    """digits_cnn trained 10 epochs on `digits` (test accuracy 98.9 %); copy it before changing it."""
    from edgeprune.models import zoo
    from edgeprune.models.train import Recipe, train

    return train(zoo.build_model("digits_cnn"), digits.x_train, digits.y_train, Recipe(epochs=10))


@pytest.fixture(scope="session")
def driver_macros(tmp_path_factory) -> Callable[[str, Sequence[str]], dict[str, int]]:
    """driver_macros(board, names) -> {name: value}: C expressions over the macros of the board's
    setup and UART drivers (and ep_scs.h), as the host compiler evaluates them: `&RCC_CR` is a
    register's address. The timer drivers hold Arm assembly and are left out."""
    import subprocess

    from edgeprune.targets import TARGETS_DIR, load_target

    def get(board: str, names: Sequence[str]) -> dict[str, int]:
        target = load_target(board)
        folder = tmp_path_factory.mktemp(f"macros-{board}")
        sources = [path for path in target.drivers if not path.name.startswith("timer_")]
        prints = "".join(f'  printf("%llu\\n", (unsigned long long)(uintptr_t)({name}));\n' for name in names)
        (folder / "probe.c").write_text('#include <stdint.h>\n#include <stdio.h>\n#include "ep_scs.h"\n'
                                        + "".join(f'#include "{path}"\n' for path in sources)
                                        + f"int main(void) {{\n{prints}  return 0;\n}}\n")
        subprocess.run(["gcc", "-Wall", "-Werror", f"-I{TARGETS_DIR / 'cortex-m'}", f"-I{TARGETS_DIR / 'runtime'}",
                        *target.c_defines, "-o", str(folder / "probe"), str(folder / "probe.c")],
                       check=True, capture_output=True)
        out = subprocess.run([str(folder / "probe")], check=True, capture_output=True, text=True).stdout.split()
        return dict(zip(names, map(int, out)))

    return get
