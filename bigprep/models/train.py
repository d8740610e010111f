"""Training: the one sequential fold (SGD state cannot be merged exactly).

Every epoch visits the chunks in a seeded, shuffled order (rows shuffled within
each chunk too), reading the next chunk while the current one trains. Rows whose
position hashes into the validation share never train; after each epoch the
validation loss decides early stopping, and ``checkpoint(model, history)`` is
called with the best model so far. The features come from one reduction first
(the ``encode`` operation).
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from ..errors import BigprepError
from ..io.dataset import Dataset
from ..ops.base import fit as fit_operation
from ..ops.encode import Encode, FeatureSpec, chunk_list, read_chunk, validation_mask
from .estimators import (
    TrainOptions,
    final_step,
    kernel_features,
    validation_loss,
)


def learn_spec(dataset: Dataset, executor, *, options: TrainOptions, target: str | None,
               features=(), categorical=(), chunk_rows: int) -> FeatureSpec:
    """The features a model of ``options.model`` needs: one reduction over the data."""
    encode = Encode({"task": options.task, "target": target, "features": tuple(features),
                     "categorical": tuple(categorical),
                     "scale": options.model != "multinomial-nb", "chunk_rows": chunk_rows})
    return fit_operation(encode, dataset, executor, chunk_rows=chunk_rows)


def _load_xy(item, spec: FeatureSpec, share: float, seed: int, shuffle_seed, with_val: bool):
    """One chunk's training rows, already shuffled, as (X, y); and its validation rows.

    Rows are shuffled and the validation rows dropped on the frame, before the
    matrix is built, so the (wide) matrix is made once and never copied.
    """
    partition, start, length = item
    columns = spec.numeric + spec.categorical + ([spec.target] if spec.target else [])
    frame = read_chunk(item, list(dict.fromkeys(columns)))
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
          history: list | None = None, chunk_rows: int, checkpoint=None, log=None) -> tuple:
    """Fold ``dataset`` into ``model`` for ``options.epochs`` epochs (early stopping on
    the validation rows); returns (best model, history). ``checkpoint(model, history)``
    runs after every epoch."""
    chunks = chunk_list(dataset, chunk_rows)
    share, seed = options.validation, options.seed
    classes = np.array(spec.classes) if spec.task == "classification" else None
    val_X, val_y, kept = [], [], 0
    best_loss, best_model, stale = float("inf"), None, 0
    history = list(history or [])
    for epoch in range(options.epochs):
        rng = np.random.default_rng([seed, len(history)])
        order = rng.permutation(len(chunks))
        with ThreadPoolExecutor(1) as reader:  # the next chunk is read while this one trains
            def load(chunk: int, want_val: bool, epoch_seed: int = len(history)):
                return reader.submit(_load_xy, chunks[chunk], spec, share, seed,
                                     [seed, epoch_seed, chunk], want_val)

            first_epoch = epoch == 0
            pending = load(int(order[0]), first_epoch) if len(order) else None
            for k in range(len(order)):
                X, y, X_val, y_val = pending.result()
                if k + 1 < len(order):
                    pending = load(int(order[k + 1]),
                                   first_epoch and kept < options.max_validation_rows)
                if X_val is not None and len(X_val) and kept < options.max_validation_rows:
                    val_X.append(X_val)
                    val_y.append(y_val)
                    kept += len(X_val)
                if not len(X):
                    continue
                Xt = kernel_features(model, X)
                est = final_step(model)
                if spec.task == "classification":
                    est.partial_fit(Xt, y, classes=classes)
                elif spec.task == "regression":
                    est.partial_fit(Xt, y)
                else:
                    est.partial_fit(Xt)
        if val_X:
            VX = np.vstack(val_X)
            vy = np.concatenate(val_y) if spec.target else None
            loss = validation_loss(model, spec, VX, vy)
        else:
            loss = float("nan")
        history.append({"epoch": len(history) + 1, "validation_loss": loss,
                        "validation_rows": kept})
        if log:
            log(f"epoch {len(history)}: validation loss {loss:.6g} ({kept:,} rows)")
        if loss < best_loss - options.tol or best_model is None:
            best_loss, best_model, stale = loss, copy.deepcopy(model), 0
        else:
            stale += 1
        if checkpoint is not None:
            checkpoint(best_model, history)
        if val_X and stale >= options.patience:
            if log:
                log(f"early stop: no better validation loss for {stale} epochs")
            break
    return best_model, history
