"""Each kind of step as the runner uses it: fit on a chunk stream (merged into the
state the last run saved), the per-chunk transform, and the state's save / load.

A step passes every column on (unless its ``keep`` says otherwise) and adds or
replaces its own: impute fills in place, tfidf adds the vector and keywords,
predict adds the prediction.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from ..io.dataset import Dataset
from ..io.statefile import Envelope, save_envelope
from ..ops.base import fit
from ..ops.impute.operation import Impute
from ..ops.tfidf.operation import Tfidf, TfidfParams
from .spec import Spec, Step


def view(dataset: Dataset, schema: pl.Schema | None) -> Dataset:
    """``dataset`` as an earlier step leaves it: its schema; footer statistics
    (null counts, bounds) no longer known."""
    if schema is None:
        return dataset
    arrow = pl.DataFrame(schema=schema).to_arrow().schema
    return replace(dataset, schema=arrow, null_counts=dict.fromkeys(arrow.names),
                   bounds={})


class Stateless:
    """A step that learns nothing (predict)."""

    stateful = False

    def __init__(self, spec: Spec, step: Step):
        self.spec, self.step = spec, step

    def fit(self, dataset, executor, prior, upstream):
        return None

    def load(self, path: str):
        return None


class ImputeStep(Stateless):
    stateful = True

    def op(self) -> Impute:
        return Impute({**self.step.params.model_dump(), "chunk_rows": self.spec.chunk_rows})

    def fit(self, dataset, executor, prior, upstream):
        return fit(self.op(), dataset, executor, prior=prior, learn=True, upstream=upstream)

    def transformer(self, fitted, dataset):
        return self.op().transformer(fitted, dataset)

    def load(self, path: str):
        from ..api.imputer import Imputer

        state = Imputer.load(path).state_
        state.path = path
        return state


class TfidfStep(Stateless):
    stateful = True

    def op(self) -> Tfidf:
        params = {k: v for k, v in self.step.params.model_dump().items()
                  if k in TfidfParams.model_fields}
        return Tfidf({**params, "chunk_rows": self.spec.chunk_rows})

    def fit(self, dataset, executor, prior, upstream):
        return fit(self.op(), dataset, executor, prior=prior, learn=True, upstream=upstream)

    def transformer(self, fitted, dataset):
        p = self.step.params
        keep = list(p.keep) if p.keep is not None else dataset.columns
        return self.op().transformer(fitted, dataset, keep=keep, keywords=p.keywords,
                                     vectors=p.vectors)

    def load(self, path: str):
        from ..api.text import TfidfVectorizer

        return TfidfVectorizer.load(path).state_


class PredictStep(Stateless):
    def transformer(self, fitted, dataset):
        from ..models.predict import Predict, Trained
        from ..models.store import load_model

        model, spec, _ = load_model(self.step.params.model)
        p = self.step.params
        keep = tuple(p.keep) if p.keep is not None else tuple(dataset.columns)
        op = Predict({"keep": keep, "proba": p.proba, "chunk_rows": self.spec.chunk_rows})
        return op.transformer(Trained(model, spec), dataset)


KINDS = {"impute": ImputeStep, "tfidf": TfidfStep, "predict": PredictStep}


def runner(spec: Spec, step: Step) -> Stateless:
    return KINDS[step.kind](spec, step)


def save_state(path: str, runner_: Stateless, state) -> None:
    """A step's state without wall-clock times: the same fit saves the same bytes."""
    sidecar: dict = {}
    payload = state.to_payload(sidecar)
    params = runner_.op().params.model_dump()
    save_envelope(path, Envelope(runner_.step.kind, params, payload, sidecar, state.seen,
                                 "", state.updates), stamped=False)
