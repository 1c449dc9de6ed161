"""The starting model of a search and its data: a zoo model trained on the digits (once, kept in
the output folder) or a model saved by edgeprune."""
from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from edgeprune.models import data, zoo
from edgeprune.models.train import Recipe, train
from edgeprune.prune import serialize
from edgeprune.prune.api import starting_model


def load_base(model: str | os.PathLike, out: Path,
              train_epochs: int) -> tuple[nn.Module, str, tuple[int, ...], data.Dataset]:
    """(model, label, input shape, digits data set shaped for it)."""
    net, name, shape, fresh = starting_model(model, None)
    label = name or Path(model).stem
    ds = data.digits(shape, data.digits_classes(zoo.num_outputs(name) if name else None))
    if fresh:
        saved = out / "base.pt"
        key = {"train_epochs": train_epochs}
        if saved.is_file() and serialize.load(saved).extra == key:
            net = serialize.load(saved).model
        else:
            train(net, ds.x_train, ds.y_train, Recipe(epochs=train_epochs))
            serialize.save(saved, net, shape, name, extra=key)
    return net.eval(), label, shape, ds
