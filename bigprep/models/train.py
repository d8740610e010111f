"""Train scikit-learn ``partial_fit`` estimators over partitions; predict; evaluate.

Training is the one sequential fold: every epoch visits the chunks in a seeded,
shuffled order (rows shuffled within each chunk too), reading the next chunk
while the current one trains. Rows whose position hashes into the validation
share never train; after each epoch the validation loss decides early stopping
and a checkpoint is saved. Models are stored with skops (no pickle) beside a
JSON feature spec, and loading refuses unknown types or a changed file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from .. import __version__
from ..dataset import DEFAULT_CHUNK_ROWS, iter_chunks, open_dataset
from ..errors import BigprepError
from ..executor import Executor
from ..sink import (
    atomic_path,
    check_out_dir,
    write_each,
    write_json_atomic,
    write_partition,
)
from ..storage import is_remote
from .features import (
    FeatureSpec,
    chunk_list,
    learn_spec,
    read_chunk,
    select_features,
    validation_mask,
)
from .metrics import ClassificationMetrics, ClusterMetrics, RegressionMetrics

MODEL_FORMAT = "bigprep.model/1"
CLASSIFIERS = ("logistic", "svm", "modified-huber", "perceptron", "passive-aggressive",
               "multinomial-nb", "bernoulli-nb", "rbf-svm", "rbf-logistic")
TASK_OF = {**dict.fromkeys(CLASSIFIERS, "classification"), "linear": "regression",
           "kmeans": "cluster"}


def check_task(model: str, task: str | None) -> None:
    """--task, when given, must be the task of --model."""
    if task and TASK_OF.get(model) != task:
        raise BigprepError(f"--task {task} does not fit --model {model} (a {TASK_OF[model]} "
                           "model). Use --model linear for regression, kmeans for cluster.")


@dataclass
class TrainOptions:
    model: str = "logistic"
    epochs: int = 5
    validation: float = 0.05
    seed: int = 0
    penalty: str = "l2"
    alpha: float = 1e-4
    l1_ratio: float = 0.15
    class_weight: str | None = None  # None or "balanced"
    patience: int = 2
    tol: float = 1e-4
    kernel_components: int = 500
    gamma: float | None = None
    clusters: int = 8
    max_validation_rows: int = 200_000


def build_model(options: TrainOptions, spec: FeatureSpec):
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.kernel_approximation import RBFSampler
    from sklearn.linear_model import Perceptron, SGDClassifier, SGDRegressor
    from sklearn.naive_bayes import BernoulliNB, MultinomialNB
    from sklearn.pipeline import Pipeline

    o = options
    weights = None
    if o.class_weight == "balanced":
        total, k = sum(spec.class_counts), len(spec.classes)
        weights = {c: total / (k * n) for c, n in zip(spec.classes, spec.class_counts)}
    penalty = None if o.penalty == "none" else o.penalty
    sgd = {"penalty": penalty, "alpha": o.alpha, "l1_ratio": o.l1_ratio, "random_state": o.seed,
           "class_weight": weights}
    # Averaging (ASGD) with a small adaptive step is what lands near the in-memory optimum
    # in an epoch or two, even over time-ordered chunks; the "optimal" schedule's huge
    # first steps do not (measured in tests/test_models.py and bench/).
    steps = {"average": True, "learning_rate": "adaptive", "eta0": 0.01}
    made = {
        "logistic": lambda: SGDClassifier(loss="log_loss", **steps, **sgd),
        "svm": lambda: SGDClassifier(loss="hinge", **steps, **sgd),
        "modified-huber": lambda: SGDClassifier(loss="modified_huber", **steps, **sgd),
        "perceptron": lambda: Perceptron(penalty=penalty, alpha=o.alpha, l1_ratio=o.l1_ratio,
                                         random_state=o.seed, class_weight=weights),
        "passive-aggressive": lambda: SGDClassifier(loss="hinge", penalty=None,
                                                    learning_rate="pa1", eta0=1.0,
                                                    random_state=o.seed, class_weight=weights),
        "multinomial-nb": lambda: MultinomialNB(),
        "bernoulli-nb": lambda: BernoulliNB(),
        "linear": lambda: SGDRegressor(penalty=penalty, alpha=o.alpha, l1_ratio=o.l1_ratio,
                                       random_state=o.seed, **steps),
        "kmeans": lambda: MiniBatchKMeans(n_clusters=o.clusters, random_state=o.seed,
                                          n_init=3),
    }
    if o.model in ("rbf-svm", "rbf-logistic"):
        loss = "hinge" if o.model == "rbf-svm" else "log_loss"
        return Pipeline([("rbf", RBFSampler(gamma=o.gamma or 1.0 / max(1, len(spec.names)),
                                            n_components=o.kernel_components,
                                            random_state=o.seed)),
                         ("linear", SGDClassifier(loss=loss, **steps, **sgd))])
    if o.model not in made:
        raise BigprepError(f"--model {o.model}: unknown; use one of {', '.join(TASK_OF)}.")
    return made[o.model]()


def _final(model):
    return model.steps[-1][1] if hasattr(model, "steps") else model


def _features(model, X):
    """X through every step but the last (the kernel map of rbf-* models)."""
    if hasattr(model, "steps"):
        for _, step in model.steps[:-1]:
            if not hasattr(step, "random_weights_"):
                step.fit(X)
            X = step.transform(X)
    return X


def _loss(model, spec: FeatureSpec, X, y) -> float:
    if not len(X):
        return float("nan")
    est, Z = _final(model), _features(model, X)
    if spec.task == "regression":
        return float(((est.predict(Z) - y) ** 2).mean())
    if spec.task == "cluster":
        return float(-est.score(Z) / len(Z))
    if hasattr(est, "predict_proba") and getattr(est, "loss", "log_loss") != "hinge":
        from sklearn.metrics import log_loss

        return float(log_loss(y, est.predict_proba(Z), labels=est.classes_))
    return float(1.0 - (est.predict(Z) == y).mean())  # error rate for hinge / perceptron


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
                               "--model bernoulli-nb or logistic, or shift the columns.")
        out += [X, spec.labels(part, where) if spec.target else None]
    return out if with_val else out + [None, None]


def train(inputs, out_dir: str, *, target: str | None, options: TrainOptions,
          features: list[str] = (), categorical: list[str] = (), init_model: str | None = None,
          chunk_rows: int = DEFAULT_CHUNK_ROWS, executor: Executor | None = None,
          log=None, storage_options: dict | None = None) -> dict:
    """Train out of core; saves ``out_dir`` after every epoch. Returns the history."""
    if is_remote(out_dir):
        raise BigprepError(f"--out {out_dir}: model folders are local; train to a local "
                           "folder and copy it (inputs may be URLs).")
    dataset = open_dataset(inputs, storage_options)
    schema = dict(pl.Schema(dataset.schema))
    if init_model:  # continue training a saved model on new partitions
        model, spec, meta = load_model(init_model)
        options = TrainOptions(**{**meta["options"], "epochs": options.epochs})
    else:
        task = TASK_OF.get(options.model)
        if task is None:
            raise BigprepError(f"--model {options.model}: unknown; use one of "
                               f"{', '.join(TASK_OF)}.")
        if task != "cluster":
            if not target:
                raise BigprepError(f"--model {options.model} needs --target COLUMN.")
            dataset.require(target, "--target")
        numeric, cats = select_features(schema, target if task != "cluster" else None,
                                        list(features), list(categorical))
        spec = learn_spec(dataset, executor or Executor(), task=task,
                          target=target if task != "cluster" else None, numeric=numeric,
                          categorical=cats, chunk_rows=chunk_rows,
                          scale=options.model != "multinomial-nb")
        model = build_model(options, spec)
        meta = {"history": []}
    chunks = chunk_list(dataset, chunk_rows)
    share, seed = options.validation, options.seed
    classes = np.array(spec.classes) if spec.task == "classification" else None
    val_X, val_y, kept = [], [], 0
    best_loss, best_model, stale = float("inf"), None, 0
    history = list(meta.get("history", []))
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
                Xt = _features(model, X)
                est = _final(model)
                if spec.task == "classification":
                    est.partial_fit(Xt, y, classes=classes)
                elif spec.task == "regression":
                    est.partial_fit(Xt, y)
                else:
                    est.partial_fit(Xt)
        if val_X:
            VX = np.vstack(val_X)
            vy = np.concatenate(val_y) if spec.target else None
            loss = _loss(model, spec, VX, vy)
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
        save_model(out_dir, best_model, spec, options, history)  # a checkpoint per epoch
        if val_X and stale >= options.patience:
            if log:
                log(f"early stop: no better validation loss for {stale} epochs")
            break
    return {"history": history, "spec": spec}


# --- persistence ------------------------------------------------------------------------

def save_model(out_dir: str, model, spec: FeatureSpec, options: TrainOptions,
               history: list) -> None:
    import skops.io as sio

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.skops")
    with atomic_path(path) as tmp:
        sio.dump(model, tmp)
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    write_json_atomic(os.path.join(out_dir, "model.json"), {
        "format": MODEL_FORMAT, "bigprep_version": __version__, "sha256": digest,
        "options": asdict(options), "features": spec.to_dict(), "history": history})


# The only types a bigprep model file may hold; anything else is refused.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")


def load_model(model_dir: str):
    """(model, spec, metadata); refuses other versions, changed files, unknown types."""
    import skops.io as sio

    meta_path = os.path.join(model_dir, "model.json")
    path = os.path.join(model_dir, "model.skops")
    try:
        with open(meta_path) as fh:
            meta = json.load(fh)
        with open(path, "rb") as fh:
            blob = fh.read()
    except (OSError, json.JSONDecodeError) as exc:
        raise BigprepError(f"{model_dir}: not a bigprep model folder ({exc}); train one with "
                           "`bigprep train`.") from None
    if meta.get("format") != MODEL_FORMAT:
        raise BigprepError(f"{model_dir}: a model of another format or version "
                           f"({meta.get('format')!r}, this bigprep reads {MODEL_FORMAT!r}); "
                           "train it again.")
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise BigprepError(f"{path}: the file changed since it was saved (checksum differs); "
                           "refusing to load it. Train again or restore the original.")
    try:
        untrusted = sio.get_untrusted_types(data=blob)
    except Exception as exc:  # noqa: BLE001 - a damaged file of any kind is refused
        raise BigprepError(f"{path}: not a readable skops file ({exc}).") from None
    unknown = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if unknown:
        raise BigprepError(f"{path}: holds types bigprep does not trust ({', '.join(unknown)}); "
                           "refusing to load it.")
    model = sio.loads(blob, trusted=untrusted)
    return model, FeatureSpec.from_dict(meta["features"]), meta


# --- predict and evaluate --------------------------------------------------------------------

def _predict(model, spec: FeatureSpec, X):
    est, Z = _final(model), _features(model, X)
    pred = est.predict(Z)
    proba = score = None
    if spec.task == "classification":
        if hasattr(est, "predict_proba") and getattr(est, "loss", "log_loss") != "hinge":
            proba = est.predict_proba(Z)
        if len(spec.classes) == 2:  # a score that keeps its resolution near 0 and 1
            if hasattr(est, "decision_function"):
                score = est.decision_function(Z)
            else:
                log_proba = est.predict_log_proba(Z)
                score = log_proba[:, 1] - log_proba[:, 0]
    elif spec.task == "regression":
        pred = pred * spec.y_std + spec.y_mean
    else:
        score = ((Z - est.cluster_centers_[pred]) ** 2).sum(axis=1)
    return pred, proba, score


def _needed(spec: FeatureSpec, with_target: bool) -> list[str]:
    cols = spec.numeric + spec.categorical + ([spec.target] if with_target and spec.target
                                              else [])
    return list(dict.fromkeys(cols))


def predict_partition(job) -> dict:
    partition, model, spec, keep, proba_out, chunk_rows, final, source = job
    columns = list(dict.fromkeys(keep + _needed(spec, False)))
    rows = 0

    def predicted(frame: pl.DataFrame, where: str) -> pl.DataFrame:
        pred, proba, _ = _predict(model, spec, spec.matrix(frame, where))
        out = pl.concat([frame.select(keep), pl.DataFrame({"prediction": pred})],
                        how="horizontal")
        if proba_out and proba is not None:
            out = out.with_columns(pl.Series(f"proba_{c}", proba[:, i])
                                   for i, c in enumerate(spec.classes))
        return out

    def chunks():
        nonlocal rows
        for offset, frame in iter_chunks(partition, columns, chunk_rows, nan_as_null=()):
            rows += frame.height
            yield predicted(frame, f"{partition.path}, rows from {offset - partition.offset}")

    # the output types come from predicting one row (a file with none has no rows to type)
    first = next(iter_chunks(partition, columns, 1, nan_as_null=()), (0, None))[1]
    schema = predicted(first, partition.path).schema if first is not None else \
        pl.Schema({k: source[k] for k in keep})
    write_partition(final, chunks(), schema, "zstd", chunk_rows, partition.options)
    return {"file": partition.rel, "rows": rows}


def predict(model_dir: str, inputs, out: str, *, keep: list[str] = (), proba: bool = False,
            chunk_rows: int = DEFAULT_CHUNK_ROWS, executor: Executor | None = None,
            storage_options: dict | None = None) -> list:
    model, spec, _ = load_model(model_dir)
    dataset = open_dataset(inputs, storage_options)
    for name in list(keep) + _needed(spec, False):
        dataset.require(name, "the model's features" if name not in keep else "--keep")
    check_out_dir(out, [p.path for p in dataset.partitions], dataset.root)
    source = pl.Schema(dataset.schema)
    return write_each(dataset.partitions, out, predict_partition,
                      lambda p, final: (p, model, spec, list(keep), proba, chunk_rows, final,
                                        source),
                      executor=executor or Executor(), label="predict",
                      command="bigprep predict", options=storage_options)


def _new_metrics(spec: FeatureSpec):
    if spec.task == "classification":
        return ClassificationMetrics(spec.classes)
    return RegressionMetrics() if spec.task == "regression" else ClusterMetrics()


def evaluate_partition(job):
    partition, model, spec, chunk_rows = job
    metrics = _new_metrics(spec)
    for offset, frame in iter_chunks(partition, _needed(spec, True), chunk_rows, nan_as_null=()):
        where = f"{partition.path}, rows from {offset - partition.offset}"
        X = spec.matrix(frame, where)
        y = frame[spec.target].to_numpy() if spec.target else None
        if spec.target:
            spec.labels(frame, where)  # unseen labels stop here, clearly
            if frame[spec.target].null_count():
                raise BigprepError(f"{where}: target {spec.target!r} is null; drop those rows.")
        pred, proba, score = _predict(model, spec, X)
        metrics.update(y, pred, proba, score)
    return metrics


def evaluate(model_dir: str, inputs, *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
             executor: Executor | None = None, storage_options: dict | None = None) -> dict:
    model, spec, _ = load_model(model_dir)
    dataset = open_dataset(inputs, storage_options)
    for name in _needed(spec, True):
        dataset.require(name, "the model's features and target")
    jobs = [(p, model, spec, chunk_rows) for p in dataset.partitions]
    metrics = (executor or Executor()).tree_reduce(evaluate_partition, jobs,
                                                   lambda a, b: a.merge(b), label="evaluate")
    return metrics.result()

