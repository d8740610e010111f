"""Training: the one sequential fold (SGD state cannot be merged exactly).

Every epoch visits the chunks in a seeded, shuffled order (rows shuffled within
each chunk too), reading the next chunk while the current one trains. Rows whose
position hashes into the validation share never train; after each epoch the
validation loss decides early stopping, and ``checkpoint(model, history)`` is
called with the best model so far. The features come from one reduction first
(the ``encode`` operation).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from ..errors import BigprepError, in_partition
from ..io.dataset import Chunk, Dataset
from ..ops.base import fit as fit_operation
from ..ops.encode import Encode, FeatureSpec, chunk_list, read_chunk, validation_mask
from .estimators import (
    TrainOptions,
    build_model,
    check_task,
    final_step,
    kernel_features,
    validation_loss,
)


def learn_spec(dataset: Dataset, executor, *, options: TrainOptions, target: str | None,
               features=(), categorical=(), chunk_rows: int, upstream=None) -> FeatureSpec:
    """The features a model of ``options.model`` needs: one reduction over the data."""
    encode = Encode({"task": options.task, "target": target, "features": tuple(features),
                     "categorical": tuple(categorical),
                     "scale": options.model != "multinomial-nb", "chunk_rows": chunk_rows})
    return fit_operation(encode, dataset, executor, upstream=upstream)


def new_model(dataset: Dataset, executor, *, options: TrainOptions, target: str | None,
              features=(), categorical=(), task: str | None = None, chunk_rows: int,
              upstream=None) -> tuple:
    """(an untrained model of ``options.model``, the features it needs)."""
    check_task(options.model, task)
    spec = learn_spec(dataset, executor, options=options,
                      target=target if options.task != "cluster" else None,
                      features=features, categorical=categorical, chunk_rows=chunk_rows,
                      upstream=upstream)
    return build_model(options, spec), spec


def _load_xy(item, spec: FeatureSpec, share: float, seed: int, shuffle_seed, with_val: bool,
             upstream=None):
    """One chunk's training rows, already shuffled, as (X, y); and its validation rows.

    Rows are shuffled and the validation rows dropped on the frame, before the
    matrix is built, so the (wide) matrix is made once and never copied. ``upstream``
    turns the chunk as read into the chunk trained on (a pipeline's earlier steps).
    """
    partition, start, length = item
    try:
        return _xy(item, spec, share, seed, shuffle_seed, with_val, upstream)
    except BigprepError as err:
        raise in_partition(err, partition.path) from None


def _xy(item, spec: FeatureSpec, share: float, seed: int, shuffle_seed, with_val: bool,
        upstream):
    partition, start, length = item
    if upstream is None:
        frame = read_chunk(item, spec.columns(True))
    else:
        chunk = Chunk(read_chunk(item, None), partition, partition.offset + start)
        frame = upstream(chunk).frame
    where = f"{partition.path}, rows {start}-{start + length - 1}"
    positions = np.arange(partition.offset + start, partition.offset + start + length)
    val = validation_mask(positions, share, seed)
    train_rows = np.flatnonzero(~val)
    train_rows = train_rows[np.random.default_rng(shuffle_seed).permutation(len(train_rows))]
    parts = [frame[train_rows]] + ([frame.filter(pl.Series(val))] if with_val else [])
    out = []
    for part in parts:
        X = spec.matrix(part, where)
        if spec.task == "classification" and not spec.scale and (X < 0).any():
            raise BigprepError(f"{where}: naive Bayes needs non-negative features. Use "
                               "`model` bernoulli-nb or logistic, or shift the columns.")
        out += [X, spec.labels(part, where) if spec.target else None]
    return out if with_val else out + [None, None]


def train(dataset: Dataset, model, spec: FeatureSpec, options: TrainOptions, *,
          history: list | None = None, chunk_rows: int, checkpoint=None, log=None,
          upstream=None) -> tuple:
    """Fold ``dataset`` into ``model`` for ``options.epochs`` epochs (early stopping on
    the validation rows); returns (best model, history). ``checkpoint(model, history)``
    runs after every epoch; ``upstream`` as for ``_load_xy``."""
    chunks = chunk_list(dataset, chunk_rows)
    if checkpoint is not None:  # the model file's writer: 0.5 s of imports, made while
        _import_behind("skops.io")  # the first epoch trains (scikit-learn's SGD drops the GIL)
    validation = _Validation(options.max_validation_rows)
    best_loss, best_model, stale = float("inf"), None, 0
    history = list(history or [])
    for epoch in range(options.epochs):
        _epoch(model, spec, options, chunks, len(history), validation, epoch == 0, upstream)
        loss = validation.loss(model, spec)
        history.append({"epoch": len(history) + 1,
                        "validation_loss": loss if validation.kept else None,
                        "validation_rows": validation.kept})
        if log:
            log(f"epoch {len(history)}: validation loss {loss:.6g} "
                f"({validation.kept:,} rows)" if validation.kept else
                f"epoch {len(history)}: no validation rows, the latest model is kept")
        if not validation.kept or loss < best_loss - options.tol or best_model is None:
            # without validation rows there is nothing to compare: keep the latest model
            best_loss, best_model, stale = loss, copy.deepcopy(model), 0
        else:
            stale += 1
        if checkpoint is not None:
            checkpoint(best_model, history)
        if validation.kept and stale >= options.patience:
            if log:
                log(f"early stop: no better validation loss for {stale} epochs")
            break
    return best_model, history


def _import_behind(name: str) -> None:
    """Import ``name`` on a thread; a failure is left for the import that needs it."""
    def load():
        with contextlib.suppress(Exception):  # ImportError, or a concurrent import's deadlock
            importlib.import_module(name)
    threading.Thread(target=load, name=f"bigprep-import-{name}", daemon=True).start()


class _Validation:
    """The held-out rows, gathered during the first epoch (up to ``cap`` rows)."""

    def __init__(self, cap: int):
        self.cap, self.kept, self.X, self.y = cap, 0, [], []

    @property
    def wanted(self) -> bool:
        return self.kept < self.cap

    def add(self, X, y) -> None:
        if X is not None and len(X) and self.wanted:
            self.X.append(X)
            self.y.append(y)
            self.kept += len(X)

    def loss(self, model, spec: FeatureSpec) -> float:
        if not self.X:
            return float("nan")
        y = np.concatenate(self.y) if spec.target else None
        return validation_loss(model, spec, np.vstack(self.X), y)


def _epoch(model, spec: FeatureSpec, options: TrainOptions, chunks: list, epoch_seed: int,
           validation: _Validation, first: bool, upstream) -> None:
    """One pass over the chunks in a seeded shuffled order, reading the next chunk
    while this one trains."""
    import sklearn

    seed, share = options.seed, options.validation
    order = np.random.default_rng([seed, epoch_seed]).permutation(len(chunks))
    classes = np.array(spec.classes) if spec.task == "classification" else None
    with ThreadPoolExecutor(1) as reader:
        def load(chunk: int, want_val: bool):
            return reader.submit(_load_xy, chunks[chunk], spec, share, seed,
                                 [seed, epoch_seed, chunk], want_val, upstream)

        pending = load(int(order[0]), first) if len(order) else None
        for k in range(len(order)):
            X, y, X_val, y_val = pending.result()
            if k + 1 < len(order):
                pending = load(int(order[k + 1]), first and validation.wanted)
            validation.add(X_val, y_val)
            if not len(X):
                continue
            Xt, est = kernel_features(model, X), final_step(model)
            # the matrix is finite and float64 by construction (FeatureSpec.matrix refuses
            # infinities and fills nulls): scikit-learn need not scan it again (8% a call)
            with sklearn.config_context(assume_finite=True):
                if spec.task == "classification":
                    est.partial_fit(Xt, y, classes=classes)
                elif spec.task == "regression":
                    est.partial_fit(Xt, y)
                else:
                    est.partial_fit(Xt)
