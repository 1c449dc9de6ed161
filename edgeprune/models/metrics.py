"""Metrics of a model on arrays: classification (accuracy, macro and per-class precision, recall and
F1, confusion) and anomaly detection by reconstruction error (ROC-AUC, the MLPerf Tiny AD metric)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from sklearn.metrics import (accuracy_score, confusion_matrix, precision_recall_fscore_support,
                             roc_auc_score)
from torch import nn

from edgeprune.errors import EdgepruneError


@dataclass(frozen=True)
class Metrics:
    """Scores in [0, 1], per class and macro-averaged, and the confusion matrix (rows: true class,
    columns: predicted)."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    confusion: list[list[int]]
    class_precision: list[float] = field(default_factory=list)
    class_recall: list[float] = field(default_factory=list)
    class_f1: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def scores(self) -> dict[str, float]:
        """The scalar scores by name: accuracy, macro precision/recall/F1 and, per class c,
        precision_c, recall_c and f1_c."""
        per_class = {f"{name}_{c}": value
                     for name, values in (("precision", self.class_precision),
                                          ("recall", self.class_recall), ("f1", self.class_f1))
                     for c, value in enumerate(values)}
        return {"accuracy": self.accuracy, "precision": self.precision, "recall": self.recall,
                "f1": self.f1, **per_class}


def outputs(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """The outputs of `model` (in eval mode, no gradients) for the samples `x`."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model(torch.from_numpy(x[i:i + batch_size]))
                              for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def predict(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class index predicted by `model` (eval mode) for each sample of `x`."""
    return outputs(model, x, batch_size).argmax(1).numpy()


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, num_classes: int) -> Metrics:
    """Metrics of `model` on samples `x` with labels `y`."""
    predicted = predict(model, x)
    labels = list(range(num_classes))
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, predicted, labels=labels, average="macro", zero_division=0)
    per_class = precision_recall_fscore_support(y, predicted, labels=labels, average=None,
                                                zero_division=0)[:3]
    return Metrics(float(accuracy_score(y, predicted)), float(precision), float(recall),
                   float(f1), confusion_matrix(y, predicted, labels=labels).tolist(),
                   *([float(v) for v in values] for values in per_class))


def reconstruction_errors(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Per-sample mean squared error between `model(x)` and `x`: an auto-encoder's anomaly score."""
    reconstructed = outputs(model, x).numpy().reshape(len(x), -1)
    return np.mean((reconstructed - x.reshape(len(x), -1)) ** 2, axis=1)


def roc_auc(model: nn.Module, x: np.ndarray, anomalous: np.ndarray) -> float:
    """ROC-AUC of the reconstruction error as anomaly score against the labels `anomalous`
    (1: anomaly, 0: normal), as MLPerf Tiny scores its AD auto-encoder."""
    if len(np.unique(anomalous)) != 2:
        raise EdgepruneError(f"ROC-AUC needs normal (0) and anomalous (1) samples; the labels hold "
                             f"{sorted(np.unique(anomalous).tolist())}")
    return float(roc_auc_score(anomalous, reconstruction_errors(model, x)))
