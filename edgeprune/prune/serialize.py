"""Save and load pruned models safely: architecture as plain data, weights as tensors.

The architecture is a list of the model's sub-modules with their constructor arguments. Loading
builds the original model (zoo name or a given builder) and rebuilds every Conv/Linear/BatchNorm/
Identity/Sequential that differs, which replays channel pruning, block removal and low rank. The
file is read with `torch.load(weights_only=True)`: no arbitrary objects are unpickled.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from edgeprune._atomic import write_bytes_atomic
from edgeprune.models import zoo
from edgeprune.prune.errors import PruneError
from edgeprune.prune.lowrank import replace_module

FORMAT = "edgeprune.pruned/1"

CONV_ARGS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
             "groups", "padding_mode")
REBUILT: dict[str, tuple[type[nn.Module], tuple[str, ...]]] = {
    "Conv1d": (nn.Conv1d, CONV_ARGS),
    "Conv2d": (nn.Conv2d, CONV_ARGS),
    "Linear": (nn.Linear, ("in_features", "out_features")),
    "BatchNorm1d": (nn.BatchNorm1d, ("num_features", "eps", "momentum", "affine",
                                     "track_running_stats")),
    "BatchNorm2d": (nn.BatchNorm2d, ("num_features", "eps", "momentum", "affine",
                                     "track_running_stats")),
    "Identity": (nn.Identity, ()),
    "Sequential": (nn.Sequential, ()),
}


@dataclass
class Saved:
    """A loaded model and what was stored with it."""

    model: nn.Module
    model_name: str | None
    input_shape: tuple[int, ...]
    extra: dict[str, Any] = field(default_factory=dict)


def describe(module: nn.Module) -> dict[str, Any]:
    """Type name and constructor arguments of one module (JSON-able)."""
    kind = type(module).__name__
    if kind not in REBUILT:
        return {"type": kind}
    args = {name: getattr(module, name) for name in REBUILT[kind][1]}
    if kind in ("Conv1d", "Conv2d", "Linear"):
        args["bias"] = module.bias is not None
    if kind == "Sequential":
        args["children"] = list(module._modules)
    return {"type": kind, "args": {k: list(v) if isinstance(v, tuple) else v
                                   for k, v in args.items()}}


def architecture(model: nn.Module) -> list[list]:
    """[name, description] for every sub-module, parents before children."""
    return [[name, describe(m)] for name, m in model.named_modules() if name]


def rebuild(entry: dict[str, Any]) -> nn.Module:
    cls, _ = REBUILT[entry["type"]]
    args = dict(entry["args"])
    args.pop("children", None)
    return cls(**args)


def replay(model: nn.Module, layout: list[list]) -> nn.Module:
    """Reshape a freshly built `model` in place to the saved `layout`."""
    for name, entry in layout:
        try:
            current = model.get_submodule(name)
        except AttributeError:
            current = None
        if current is not None and describe(current) == entry:
            continue
        if entry["type"] not in REBUILT:
            raise PruneError(f"saved layer {name!r} is a {entry['type']}, which the builder does "
                             "not produce there; was the model saved from another architecture?")
        replace_module(model, name, rebuild(entry))
    return model


def save(path: str | os.PathLike, model: nn.Module, input_shape: tuple[int, ...],
         model_name: str | None = None, extra: dict[str, Any] | None = None) -> None:
    """Write architecture, weights and `extra` (plain data) to `path` atomically."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "model_name": model_name, "input_shape": list(input_shape),
                "architecture": architecture(model), "state_dict": model.state_dict(),
                "extra": extra or {}}, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load(path: str | os.PathLike, builder: Callable[[], nn.Module] | None = None) -> Saved:
    """Load a model saved by `save`; `builder` makes the unpruned model when it is not in the zoo."""
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PruneError(f"{path}: no such file") from None
    except Exception as exc:
        raise PruneError(f"{path}: not a model saved by edgeprune ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise PruneError(f"{path}: not a model saved by edgeprune (format {FORMAT} expected)")
    name = record["model_name"]
    if builder is None and name is None:
        raise PruneError(f"{path}: not a zoo model; pass the builder of the unpruned model")
    model = replay(builder() if builder is not None else zoo.build_model(name),
                   record["architecture"])
    model.load_state_dict(record["state_dict"])
    return Saved(model.eval(), name, tuple(record["input_shape"]), record["extra"])
