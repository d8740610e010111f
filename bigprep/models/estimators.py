"""Model families: how each is built from its options, and how it scores a matrix.

Adding a model is one entry in ``build_model`` (and its task in ``families.py``) plus
its tests.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..errors import BigprepError
from ..ops.base import Checked
from ..ops.encode import FeatureSpec
from .families import MODELS, TASK_OF


def check_task(model: str, task: str | None) -> None:
    """``task``, when given, must be the task of ``model``."""
    if task and TASK_OF.get(model) != task:
        raise BigprepError(f"`task` {task} does not fit `model` {model} (a {TASK_OF[model]} "
                           "model). Use model linear for regression, kmeans for cluster.")


class TrainOptions(Checked):
    """How a model is built and trained: the model family and its hyper-parameters."""

    model: Literal[MODELS] = Field("logistic", description="The model family.")
    epochs: int = Field(5, ge=1, description="Passes over the training partitions.")
    validation: float = Field(0.05, ge=0, le=0.5, description="Share of rows held out (by a "
                              "hash of the row position) for early stopping.")
    seed: int = 0
    penalty: Literal["l2", "l1", "elasticnet", "none"] = "l2"
    alpha: float = Field(1e-4, gt=0)
    l1_ratio: float = Field(0.15, ge=0, le=1)
    class_weight: Literal["balanced"] | None = None
    patience: int = Field(2, ge=1, description="Epochs without a better validation loss "
                          "before stopping.")
    tol: float = Field(1e-4, ge=0)
    kernel_components: int = Field(500, ge=1, description="Random Fourier features of "
                                   "rbf-* models.")
    gamma: float | None = Field(None, gt=0, description="RBF gamma (default 1/n_features).")
    clusters: int = Field(8, ge=2)
    max_validation_rows: int = Field(200_000, ge=1)

    @property
    def task(self) -> str:
        return TASK_OF[self.model]


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
        raise BigprepError(f"`model` {o.model}: unknown; use one of {', '.join(TASK_OF)}.")
    return made[o.model]()


def final_step(model):
    return model.steps[-1][1] if hasattr(model, "steps") else model


def kernel_features(model, X):
    """X through every step but the last (the kernel map of rbf-* models)."""
    if hasattr(model, "steps"):
        for _, step in model.steps[:-1]:
            if not hasattr(step, "random_weights_"):
                step.fit(X)
            X = step.transform(X)
    return X


def validation_loss(model, spec: FeatureSpec, X, y) -> float:
    if not len(X):
        return float("nan")
    est, Z = final_step(model), kernel_features(model, X)
    if spec.task == "regression":
        return float(((est.predict(Z) - y) ** 2).mean())
    if spec.task == "cluster":
        return float(-est.score(Z) / len(Z))
    if hasattr(est, "predict_proba") and getattr(est, "loss", "log_loss") != "hinge":
        from sklearn.metrics import log_loss

        return float(log_loss(y, est.predict_proba(Z), labels=est.classes_))
    return float(1.0 - (est.predict(Z) == y).mean())  # error rate for hinge / perceptron


def predict_matrix(model, spec: FeatureSpec, X):
    est, Z = final_step(model), kernel_features(model, X)
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


