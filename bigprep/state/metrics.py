"""Metric states: mergeable accumulators of a model's predictions, one update per chunk.

ROC AUC comes from a histogram of decision scores over 2**20 buckets of their
order-preserving float keys (sign, exponent and 8 bits of mantissa): exact up to
scores that agree in their top 20 bits, which count as ties (half a pair).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import polars as pl

from .moments import Moments
from .protocol import StateBase, register
from .quantile import order_keys

AUC_BITS = 20


def _score_buckets(scores: np.ndarray) -> np.ndarray:
    return (order_keys(scores.astype(np.float64) + 0.0) >> np.uint64(64 - AUC_BITS)).astype(
        np.int64)


class Predictions(NamedTuple):
    """What a chunk's predictions are scored on: true values (None for clusters),
    predictions, class probabilities and a decision score (each when the model has it)."""

    y_true: np.ndarray | None
    y_pred: np.ndarray
    proba: np.ndarray | None = None
    score: np.ndarray | None = None


def _add(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """The sum as a new array (None: no histogram yet)."""
    if a is None or b is None:
        return None if a is None and b is None else (a if b is None else b).copy()
    return a + b


def _array_payload(sidecar: dict, key: str, array: np.ndarray | None) -> bool:
    if array is not None:
        sidecar[key] = array.astype(np.int64).tobytes()
    return array is not None


@register("classification_metrics", example=lambda: ClassificationMetrics([0, 1]))
@dataclass
class ClassificationMetrics(StateBase):
    CHUNK = "predictions"
    classes: list
    confusion: np.ndarray = None
    log_loss: float = 0.0
    log_loss_rows: int = 0
    # score histograms of the positive and negative class (binary), made at the first
    # score: an empty state stays small, as the engine ships it to every task
    positive: np.ndarray | None = None
    negative: np.ndarray | None = None

    def __post_init__(self):
        k = len(self.classes)
        if self.confusion is None:
            self.confusion = np.zeros((k, k), dtype=np.int64)

    def empty(self) -> ClassificationMetrics:
        return ClassificationMetrics(list(self.classes))

    def update(self, chunk: Predictions) -> ClassificationMetrics:
        y_true, y_pred, proba, score = chunk
        index = {c: i for i, c in enumerate(self.classes)}
        t = np.array([index[v] for v in y_true.tolist()], dtype=np.int64)
        p = np.array([index[v] for v in y_pred.tolist()], dtype=np.int64)
        np.add.at(self.confusion, (t, p), 1)
        if proba is not None:
            picked = np.clip(proba[np.arange(len(t)), t], 1e-15, 1.0)
            self.log_loss -= float(np.log(picked).sum())
            self.log_loss_rows += len(t)
        if len(self.classes) == 2 and score is not None:
            if self.positive is None:
                self.positive = np.zeros(1 << AUC_BITS, dtype=np.int64)
                self.negative = np.zeros(1 << AUC_BITS, dtype=np.int64)
            buckets = _score_buckets(score)
            self.positive += np.bincount(buckets[t == 1], minlength=1 << AUC_BITS)
            self.negative += np.bincount(buckets[t == 0], minlength=1 << AUC_BITS)
        return self

    def merge(self, other: ClassificationMetrics) -> ClassificationMetrics:
        return ClassificationMetrics(
            self.classes, self.confusion + other.confusion, self.log_loss + other.log_loss,
            self.log_loss_rows + other.log_loss_rows, _add(self.positive, other.positive),
            _add(self.negative, other.negative))

    def result(self) -> dict:
        c = self.confusion
        total = int(c.sum())
        tp = np.diag(c).astype(float)
        precision = np.divide(tp, c.sum(axis=0), out=np.zeros_like(tp), where=c.sum(axis=0) > 0)
        recall = np.divide(tp, c.sum(axis=1), out=np.zeros_like(tp), where=c.sum(axis=1) > 0)
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp),
                       where=(precision + recall) > 0)
        pick = slice(1, 2) if len(self.classes) == 2 else slice(None)  # binary: the positive
        out = {"rows": total, "accuracy": float(tp.sum() / total) if total else None,
               "precision": float(precision[pick].mean()), "recall": float(recall[pick].mean()),
               "f1": float(f1[pick].mean()),
               "confusion_matrix": {"classes": [str(k) for k in self.classes],
                                    "rows_true_columns_predicted": c.tolist()}}
        if self.log_loss_rows:
            out["log_loss"] = self.log_loss / self.log_loss_rows
        if self.positive is not None and self.positive.sum() and self.negative.sum():
            neg_below = np.cumsum(self.negative) - self.negative
            pairs = (self.positive * (neg_below + 0.5 * self.negative)).sum()
            out["roc_auc"] = float(pairs / (self.positive.sum() * self.negative.sum()))
        return out

    def canonical(self):
        def nonzero(hist):  # the buckets that hold scores (no histogram: none)
            return [] if hist is None else [(int(i), int(hist[i])) for i in np.flatnonzero(hist)]

        return (self.confusion.tolist(), self.log_loss, self.log_loss_rows,
                nonzero(self.positive), nonzero(self.negative))

    def to_payload(self, sidecar: dict, key: str) -> dict:
        return {"classes": [c.item() if hasattr(c, "item") else c for c in self.classes],
                "confusion": self.confusion.tolist(), "log_loss": self.log_loss,
                "log_loss_rows": self.log_loss_rows,
                "histograms": _array_payload(sidecar, key + ":positive", self.positive)
                and _array_payload(sidecar, key + ":negative", self.negative)}

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> ClassificationMetrics:
        hist = [np.frombuffer(sidecar[key + s], dtype=np.int64).copy()
                for s in (":positive", ":negative")] if data["histograms"] else [None, None]
        return cls(data["classes"], np.array(data["confusion"], dtype=np.int64),
                   data["log_loss"], data["log_loss_rows"], *hist)


@register("regression_metrics")
@dataclass
class RegressionMetrics(StateBase):
    CHUNK = "predictions"
    n: int = 0
    sse: float = 0.0
    sae: float = 0.0
    # the spread of y, merged exactly
    target: Moments = field(default_factory=lambda: Moments(second=True))

    def update(self, chunk: Predictions) -> RegressionMetrics:
        y_true, y_pred = np.asarray(chunk.y_true, float), np.asarray(chunk.y_pred, float)
        err = y_true - y_pred
        self.n += len(y_true)
        self.sse += float((err ** 2).sum())
        self.sae += float(np.abs(err).sum())
        self.target.update(pl.Series(y_true))
        return self

    def merge(self, other: RegressionMetrics) -> RegressionMetrics:
        return RegressionMetrics(self.n + other.n, self.sse + other.sse, self.sae + other.sae,
                                 self.target.merge(other.target))

    def result(self) -> dict:
        if not self.n:
            return {"rows": 0}
        total = self.target.m2
        return {"rows": self.n, "rmse": (self.sse / self.n) ** 0.5, "mae": self.sae / self.n,
                "r2": 1 - self.sse / total if total > 0 else None}

    def to_payload(self, sidecar: dict, key: str) -> dict:
        return {"n": self.n, "sse": self.sse, "sae": self.sae,
                "target": self.target.to_payload(sidecar, key)}

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> RegressionMetrics:
        return cls(data["n"], data["sse"], data["sae"],
                   Moments.from_payload(data["target"], sidecar, key))


@register("cluster_metrics")
@dataclass
class ClusterMetrics(StateBase):
    CHUNK = "predictions"
    n: int = 0
    inertia: float = 0.0

    def update(self, chunk: Predictions) -> ClusterMetrics:
        self.n += len(chunk.y_pred)
        self.inertia += float(np.asarray(chunk.score).sum())
        return self

    def merge(self, other: ClusterMetrics) -> ClusterMetrics:
        return ClusterMetrics(self.n + other.n, self.inertia + other.inertia)

    def result(self) -> dict:
        return {"rows": self.n, "inertia": self.inertia}

    def to_payload(self, sidecar: dict, key: str) -> dict:
        return self.result()

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> ClusterMetrics:
        return cls(data["rows"], data["inertia"])
