"""``bigprep.SGDModel``: scikit-learn partial_fit models trained over partitions."""

from __future__ import annotations

import os

from ..engine.passes import write_each
from ..errors import BigprepError
from ..io.dataset import DEFAULT_CHUNK_ROWS
from ..io.lock import locked
from ..io.statefile import now
from ..io.storage import is_remote
from ..models.estimators import TrainOptions
from ..models.predict import Evaluate, Predict, Trained
from ..models.store import load_model, save_model
from ..models.train import new_model, train
from ..ops.base import fit as fit_operation
from ..ops.base import seen_of, validate
from .base import Estimator

OPTIONS = tuple(TrainOptions.model_fields)


class SGDModel(Estimator):
    """A scikit-learn ``partial_fit`` model trained out of core: every epoch visits the
    chunks in a seeded, shuffled order; a validation share (by a hash of the row
    position) decides early stopping and keeps the best model.

    Parameters
    ----------
    model : str
        logistic, svm, modified-huber, perceptron, passive-aggressive, multinomial-nb,
        bernoulli-nb, rbf-svm, rbf-logistic (classification), linear (regression),
        kmeans (clusters).
    target : str, optional
        The column to predict (not for kmeans).
    features, categorical : sequence of str
        Feature columns as glob patterns (default: every column but the target); the
        columns to one-hot encode.
    epochs, validation, seed, penalty, alpha, l1_ratio, class_weight, patience, tol,
    kernel_components, gamma, clusters, max_validation_rows
        Training options, as ``bigprep train --help`` describes them.
    chunk_rows, compression, executor, storage_options
        As for ``bigprep.Imputer``.

    Attributes
    ----------
    estimator_ : the trained scikit-learn estimator (or pipeline, for rbf-*).
    spec_ : FeatureSpec, how rows become its matrix. ``history_`` : one entry per epoch.

    Examples
    --------
    >>> import bigprep, numpy as np, polars as pl, tempfile
    >>> d, rng = tempfile.mkdtemp(), np.random.default_rng(0)
    >>> x = rng.normal(size=2000)
    >>> pl.DataFrame({"x": x, "y": (x > 0).astype(int)}).write_parquet(f"{d}/a.parquet")
    >>> m = bigprep.SGDModel(target="y", epochs=3).fit(f"{d}/a.parquet")
    >>> m.score(f"{d}/a.parquet")["accuracy"] > 0.95
    True
    """

    def __init__(self, *, model: str = "logistic", target: str | None = None,
                 features=(), categorical=(), task: str | None = None, epochs: int = 5,
                 validation: float = 0.05, seed: int = 0, penalty: str = "l2",
                 alpha: float = 1e-4, l1_ratio: float = 0.15, class_weight: str | None = None,
                 patience: int = 2, tol: float = 1e-4, kernel_components: int = 500,
                 gamma: float | None = None, clusters: int = 8,
                 max_validation_rows: int = 200_000, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                 compression: str | None = "zstd", executor=None,
                 storage_options: dict | None = None, log=None):
        self.model = model
        self.target = target
        self.features = features
        self.categorical = categorical
        self.task = task
        self.epochs = epochs
        self.validation = validation
        self.seed = seed
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.class_weight = class_weight
        self.patience = patience
        self.tol = tol
        self.kernel_components = kernel_components
        self.gamma = gamma
        self.clusters = clusters
        self.max_validation_rows = max_validation_rows
        self.chunk_rows = chunk_rows
        self.compression = compression
        self.executor = executor
        self.storage_options = storage_options
        self.log = log

    def _train_options(self) -> TrainOptions:
        return validate(TrainOptions, {k: getattr(self, k) for k in OPTIONS})

    # -- learning ----------------------------------------------------------------------
    def fit(self, inputs, *, checkpoint: str | None = None) -> SGDModel:
        """Learn the features (one pass), then train ``epochs`` epochs from scratch.
        With ``checkpoint=DIR`` the best model so far is saved there after every epoch."""
        options = self._train_options()
        dataset = self._open(inputs)
        model, spec = new_model(dataset, self._executor(), options=options,
                                target=self.target, features=_names(self.features, "features"),
                                categorical=_names(self.categorical, "categorical"),
                                task=self.task, chunk_rows=self.chunk_rows)
        self._fold(dataset, model, spec, options, [], [], now(), checkpoint)
        return self

    def partial_fit(self, inputs, *, checkpoint: str | None = None) -> SGDModel:
        """Train ``epochs`` more epochs on new partitions, with the features learned
        first (the same as ``fit`` on a model not fitted yet)."""
        if not hasattr(self, "estimator_"):
            return self.fit(inputs, checkpoint=checkpoint)
        options = self._train_options()
        self._fold(self._open(inputs), self.estimator_, self.spec_, options, self.history_,
                   self.seen_, self.created_, checkpoint)
        return self

    def _fold(self, dataset, model, spec, options, history, seen, created, checkpoint):
        if checkpoint is not None and os.path.exists(checkpoint) and \
                not os.path.isdir(checkpoint):
            raise BigprepError(f"`out` {checkpoint}: is a file, not a folder. Name a folder "
                               "for the model.")
        if checkpoint is not None and is_remote(checkpoint):
            raise BigprepError(f"`out` {checkpoint}: model folders are local; train to a "
                               "local folder and copy it (inputs may be URLs).")
        seen = seen + seen_of(dataset)

        def save(best, so_far):
            save_model(checkpoint, best, spec, options, so_far, seen, created)

        with locked(checkpoint, "out"):
            best, history = train(dataset, model, spec, options, history=history,
                                  chunk_rows=self.chunk_rows,
                                  checkpoint=save if checkpoint is not None else None,
                                  log=self.log)
        self.estimator_, self.spec_, self.history_ = best, spec, history
        self.seen_, self.created_ = seen, created

    # -- applying ----------------------------------------------------------------------
    def _trained(self) -> Trained:
        self._check_fitted("estimator_")
        return Trained(self.estimator_, self.spec_)

    def predict(self, inputs, *, out: str, keep=(), proba: bool = False,
                overwrite: bool = False) -> list[dict]:
        """Write one Parquet file per input: the ``keep`` columns and ``prediction``
        (and ``proba_CLASS`` with ``proba=True``). Returns the files written. ``out``
        must be empty or absent, or ``overwrite=True`` replaces it whole."""
        op = Predict({"keep": tuple(_names(keep, "keep")), "proba": proba,
                      "chunk_rows": self.chunk_rows})
        dataset = self._open(inputs, out=out)
        commit = self._output(dataset, out, "bigprep predict", op.params.model_dump(),
                              overwrite=overwrite)
        transform = op.transformer(self._trained(), dataset)
        return write_each(dataset, commit, transform, self._executor(),
                          chunk_rows=self.chunk_rows, label="predict",
                          compression=self.compression)

    def score(self, inputs) -> dict:
        """Metrics on labelled partitions, out of core: accuracy, precision, recall, F1,
        log loss, ROC AUC and the confusion matrix; RMSE, MAE and R² for regression."""
        op = Evaluate({"chunk_rows": self.chunk_rows})
        return fit_operation(op, self._open(inputs), self._executor(),
                             prior=self._trained(), learn=False)

    evaluate = score

    # -- saving ------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write the model folder: ``model.<hash>.skops`` and ``model.json``."""
        self._check_fitted("estimator_")
        save_model(path, self.estimator_, self.spec_, self._train_options(), self.history_,
                   self.seen_, self.created_)

    @classmethod
    def load(cls, path: str, *, executor=None, storage_options: dict | None = None,
             chunk_rows: int = DEFAULT_CHUNK_ROWS, compression: str | None = "zstd", log=None,
             **changes) -> SGDModel:
        """A saved model, ready to ``predict``, ``score`` or ``partial_fit`` (``changes``
        set training options for further epochs, e.g. ``epochs=1``)."""
        unknown = [k for k in changes if k not in OPTIONS]
        if unknown:
            raise BigprepError(f"{', '.join(unknown)}: not a training option; known: "
                               f"{', '.join(OPTIONS)}.")
        estimator, spec, envelope = load_model(path)
        options = {**envelope.parameters, **changes}
        model = cls(target=spec.target, features=tuple(spec.numeric + spec.categorical),
                    categorical=tuple(spec.categorical), executor=executor,
                    storage_options=storage_options, chunk_rows=chunk_rows,
                    compression=compression, log=log,
                    **{k: v for k, v in options.items() if k in OPTIONS})
        model.estimator_, model.spec_ = estimator, spec
        model.history_ = list(envelope.payload.get("history", []))
        model.seen_, model.created_ = list(envelope.partitions_seen), envelope.created
        return model


def _names(value, param: str) -> list[str]:
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    if not all(isinstance(v, str) for v in value):
        raise BigprepError(f"`{param}` {value!r}: give column names (strings).")
    return list(value)
