"""Classification metrics of a model on arrays: accuracy, macro precision/recall/F1, confusion."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from torch import nn


@dataclass(frozen=True)
class Metrics:
    """Scores in [0, 1] and the confusion matrix (rows: true class, columns: predicted)."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    confusion: list[list[int]]

    def to_dict(self) -> dict:
        return asdict(self)


def predict(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class index predicted by `model` (eval mode) for each sample of `x`."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            batches = [model(torch.from_numpy(x[i:i + batch_size])).argmax(1)
                       for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(batches).numpy()


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, num_classes: int) -> Metrics:
    """Metrics of `model` on samples `x` with labels `y`."""
    predicted = predict(model, x)
    labels = list(range(num_classes))
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, predicted, labels=labels, average="macro", zero_division=0)
    return Metrics(float(accuracy_score(y, predicted)), float(precision), float(recall),
                   float(f1), confusion_matrix(y, predicted, labels=labels).tolist())
