"""``predict`` and ``evaluate`` as operations over a trained model.

predict is a map: each chunk becomes the kept columns plus ``prediction`` (and
``proba_CLASS``). evaluate is a reduction: each chunk's predictions update a
mergeable metric state (``state.metrics``), so it runs out of core and on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from pydantic import Field

from ..engine.passes import MapDefaults
from ..errors import BigprepError
from ..io.dataset import Chunk, Dataset
from ..ops.base import Operation, Params, register
from ..ops.encode import FeatureSpec
from ..state.metrics import (
    ClassificationMetrics,
    ClusterMetrics,
    Predictions,
    RegressionMetrics,
)
from .estimators import predict_matrix


@dataclass
class Trained:
    """A trained model and the features it expects."""

    model: object
    spec: FeatureSpec

    def needed(self, with_target: bool) -> list[str]:
        return self.spec.columns(with_target)


class PredictParams(Params):
    keep: tuple[str, ...] = Field((), description="Columns to copy to the output, e.g. id.")
    proba: bool = Field(False, description="Add a proba_CLASS column per class.")


@register
class Predict(Operation):
    name = "predict"
    title = "predict"
    Params = PredictParams

    def transformer(self, fitted: Trained, dataset: Dataset, **_) -> PredictTransform:
        dataset.require_each(list(self.params.keep), "keep")
        for name in fitted.needed(False):
            dataset.require(name, None, scalar=True)
        return PredictTransform.of(fitted, pl.Schema(dataset.schema), list(self.params.keep),
                                   self.params.proba)


@dataclass
class PredictTransform(MapDefaults):
    trained: Trained
    keep: list
    proba: bool
    schema: pl.Schema
    nan_as_null = ()  # kept columns pass untouched; the matrix treats NaN as missing

    @classmethod
    def of(cls, trained: Trained, source: pl.Schema, keep: list, proba: bool):
        # the output types come from predicting one row of zeros: no data needed
        pred, probs, _ = predict_matrix(trained.model, trained.spec,
                                        np.zeros((1, len(trained.spec.names))))
        made = ["prediction"] + ([f"proba_{c}" for c in trained.spec.classes]
                                 if proba and probs is not None else [])
        clash = [c for c in keep if c in made]
        if clash:
            raise BigprepError(f"`keep` {clash[0]}: the output has a column of that name "
                               "already; rename the input column first.")
        fields = {k: source[k] for k in keep}
        fields["prediction"] = pl.Series(pred).dtype
        if proba and probs is not None:
            fields.update((f"proba_{c}", pl.Float64) for c in trained.spec.classes)
        return cls(trained, keep, proba, pl.Schema(fields))

    @property
    def reads(self) -> list[str]:
        return list(dict.fromkeys(self.keep + self.trained.needed(False)))

    def transform(self, chunk: Chunk) -> pl.DataFrame:
        spec = self.trained.spec
        pred, proba, _ = predict_matrix(self.trained.model, spec,
                                        spec.matrix(chunk.frame, chunk.where()))
        out = pl.concat([chunk.frame.select(self.keep), pl.DataFrame({"prediction": pred})],
                        how="horizontal")
        if self.proba and proba is not None:
            out = out.with_columns(pl.Series(f"proba_{c}", proba[:, i])
                                   for i, c in enumerate(spec.classes))
        return out.cast(dict(self.schema))


class EvaluateParams(Params):
    """Only ``chunk_rows``: the model decides the rest."""


@register
class Evaluate(Operation):
    """Metrics of a trained model (the ``prior``) on labelled partitions; learns nothing."""

    name = "evaluate"
    title = "evaluate"
    Params = EvaluateParams

    def plan(self, dataset: Dataset, trained: Trained):
        for name in trained.needed(True):
            dataset.require(name, None, scalar=True)
        return trained

    def reduction(self, trained: Trained, dataset, prior, learn):
        spec = trained.spec
        if spec.task == "classification":
            return ClassificationMetrics(list(spec.classes))
        return RegressionMetrics() if spec.task == "regression" else ClusterMetrics()

    def reads(self, trained: Trained, template) -> list[str]:
        return trained.needed(True)

    def prepare(self, trained: Trained):
        return _Scored(trained)

    def finish(self, trained, metrics, dataset, prior, learn, **_) -> dict:
        return metrics.result()


class _Scored:
    """Chunk -> the model's predictions on it, with the true values."""

    def __init__(self, trained: Trained):
        self.trained = trained

    def __call__(self, chunk: Chunk) -> Predictions:
        spec, frame = self.trained.spec, chunk.frame
        where = chunk.where()
        y = None
        if spec.target:
            spec.labels(frame, where)  # unseen labels stop here, clearly
            if frame[spec.target].null_count():
                raise BigprepError(f"{where}: target {spec.target!r} is null; drop those "
                                   "rows.")
            y = frame[spec.target].to_numpy()
        pred, proba, score = predict_matrix(self.trained.model, spec,
                                            spec.matrix(frame, where))
        return Predictions(y, pred, proba, score)
