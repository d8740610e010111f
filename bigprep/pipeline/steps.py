"""Each kind of step as the runner uses it: fit on a chunk stream (merged into the
state the last run saved), the per-chunk transform, and the state's save / load.

A step passes every column on (unless its ``keep`` says otherwise) and adds or
replaces its own: impute fills in place, tfidf adds the vector and keywords,
predict adds the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

from ..engine.passes import MapDefaults
from ..io.dataset import Dataset
from ..io.statefile import Envelope, save_envelope
from ..models.estimators import TrainOptions
from ..models.predict import Predict, Trained
from ..models.store import load_model, save_model
from ..models.train import new_model, train
from ..ops.base import Planned, planned, seen_of
from ..ops.impute import scan as scanning
from ..ops.impute.apply import INDICATOR_SUFFIX
from ..ops.impute.operation import Impute
from ..ops.impute.strategies import parse_chain
from ..ops.tfidf.operation import Tfidf, TfidfParams
from .spec import Spec, Step, made


def view(dataset: Dataset, schema: pl.Schema | None) -> Dataset:
    """``dataset`` as an earlier step leaves it: its schema; footer statistics
    (null counts, bounds) no longer known."""
    if schema is None:
        return dataset
    arrow = pl.DataFrame(schema=schema).to_arrow().schema
    return replace(dataset, schema=arrow, null_counts=dict.fromkeys(arrow.names),
                   bounds={})


class Stateless:
    """A step that learns nothing (predict): it joins any fused fit, reading nothing."""

    stateful = False
    fusable = True  # its fit can share a read with other steps' fits (see run.fused)

    def __init__(self, spec: Spec, step: Step):
        self.spec, self.step = spec, step

    def job(self, dataset, prior, learn: bool = True) -> Planned | None:
        """The fit, planned on ``dataset`` (None: nothing to fit)."""
        return None

    def by_name(self) -> bool:
        """Whether its fit reads only columns the spec names (so a plan made before the
        steps fused with it add their columns is the plan made after)."""
        return True

    def writes(self, job: Planned | None) -> set | None:
        """The columns its transform fills or adds (None: not known before fitting)."""
        return set(made(self.step))

    def load(self, path: str):
        return None


class Reduction(Stateless):
    """A step fitted by its operation's reduction, merged into the saved state."""

    stateful = True

    def job(self, dataset, prior, learn: bool = True) -> Planned:
        return planned(self.op(), dataset, prior=prior, learn=learn)

    def state_name(self, generation: int) -> str:
        return f"{self.step.key}.g{generation}.json"

    def save(self, path: str, state) -> None:
        """The state without wall-clock times: the same fit saves the same bytes."""
        sidecar: dict = {}
        payload = state.to_payload(sidecar)
        save_envelope(path, Envelope(self.step.kind, self.op().params.model_dump(), payload,
                                     sidecar, state.seen, "", state.updates), stamped=False)


class ImputeStep(Reduction):
    def op(self) -> Impute:
        return Impute({**self.step.params.model_dump(), "chunk_rows": self.spec.chunk_rows})

    def fills_in_order(self) -> bool:
        """Whether a fill carries values across rows (ffill, bfill, interpolate)."""
        p = self.step.params
        chains = list((p.columns or {}).values()) + ([p.strategy] if p.strategy else [])
        return any(s.kind in scanning.NEEDS for chain in chains
                   for s in parse_chain(chain, "`columns`"))

    def by_name(self) -> bool:  # a `strategy` also plans every other column
        return bool(self.step.params.columns) and self.step.params.strategy is None

    def writes(self, job: Planned) -> set:
        filled = {p.column for p in job.plan.plans}
        return filled | ({c + INDICATOR_SUFFIX for c in filled}
                         if self.step.params.add_indicator else set())

    def transformer(self, fitted, dataset):
        return self.op().transformer(fitted, dataset)

    def load(self, path: str):
        from ..api.imputer import Imputer

        state = Imputer.load(path).state_
        state.path = path
        return state


class TfidfStep(Reduction):
    def op(self) -> Tfidf:
        params = {k: v for k, v in self.step.params.model_dump().items()
                  if k in TfidfParams.model_fields}
        return Tfidf({**params, "chunk_rows": self.spec.chunk_rows})

    def transformer(self, fitted, dataset):
        p = self.step.params
        keep = list(p.keep) if p.keep is not None else dataset.columns
        return self.op().transformer(fitted, dataset, keep=keep, keywords=p.keywords,
                                     vectors=p.vectors)

    def load(self, path: str):
        from ..api.text import TfidfVectorizer

        return TfidfVectorizer.load(path).state_


@dataclass
class TrainedState:
    """A train step's state: the model, its features, the epochs so far, the
    partitions it was trained on."""

    model: object
    spec: object  # FeatureSpec
    history: list
    seen: list


@dataclass
class Passing(MapDefaults):
    """The rows as they came (a train step changes no column)."""

    schema: pl.Schema
    reads = None
    nan_as_null = ()

    def transform(self, chunk):
        return chunk.frame


class TrainStep(Stateless):
    """Training continues from the saved model on the new partitions (its features,
    learned in the first run, are kept: the model's inputs mean the same every run)."""

    stateful = True
    fusable = False  # a sequential fold of its own, not a reduction

    def options(self) -> TrainOptions:
        p = self.step.params
        return TrainOptions(**{k: getattr(p, k) for k in TrainOptions.model_fields})

    def fit(self, dataset, executor, prior: TrainedState | None, upstream,
            learn: bool = True):
        if not learn:
            return prior
        p, options = self.step.params, self.options()
        if prior is None:
            model, spec = new_model(dataset, executor, options=options, target=p.target,
                                    features=p.features, categorical=p.categorical,
                                    chunk_rows=self.spec.chunk_rows,
                                    upstream=upstream)
            prior = TrainedState(model, spec, [], [])
        best, history = train(dataset, prior.model, prior.spec, options,
                              history=prior.history, chunk_rows=self.spec.chunk_rows,
                              upstream=upstream)
        return TrainedState(best, prior.spec, history, prior.seen + seen_of(dataset))

    def transformer(self, fitted, dataset):
        return Passing(pl.Schema(dataset.polars_schema))

    def state_name(self, generation: int) -> str:
        return f"{self.step.key}.g{generation}"  # a model folder

    def save(self, path: str, state: TrainedState) -> None:
        save_model(path, state.model, state.spec, self.options(), state.history, state.seen,
                   created="", stamped=False)

    def load(self, path: str) -> TrainedState:
        model, spec, envelope = load_model(path)
        return TrainedState(model, spec, list(envelope.payload.get("history", [])),
                            list(envelope.partitions_seen))


class PredictStep(Stateless):
    """Applies a model: the spec's ``model`` folder, or the model its train step fitted
    in this run (``fitted``)."""

    def writes(self, job: None) -> set | None:
        # proba_CLASS columns too: the classes are the model's
        return None if self.step.params.proba else super().writes(job)

    def transformer(self, fitted: TrainedState | None, dataset):
        p = self.step.params
        if fitted is None:
            model, spec, _ = load_model(p.model)
        else:
            model, spec = fitted.model, fitted.spec
        keep = tuple(p.keep) if p.keep is not None else tuple(dataset.columns)
        op = Predict({"keep": keep, "proba": p.proba, "chunk_rows": self.spec.chunk_rows})
        return op.transformer(Trained(model, spec), dataset)


KINDS = {"impute": ImputeStep, "tfidf": TfidfStep, "train": TrainStep, "predict": PredictStep}


def runner(spec: Spec, step: Step) -> Stateless:
    return KINDS[step.kind](spec, step)
