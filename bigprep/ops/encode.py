"""``encode`` as an operation: one reduction learns how rows become a model's matrix.

Label classes (so ``classes=`` is known before the first ``partial_fit``), the mean
and standard deviation of every numeric feature (mean also fills its nulls),
the levels of every categorical feature, and the target's scale for regression.
Every chunk then becomes one float64 matrix with the same columns (``FeatureSpec``).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from ..engine.passes import MapDefaults
from ..errors import BigprepError
from ..io.dataset import Dataset, Partition, chunk_spans, read_span
from ..io.values import is_numeric
from ..state.composite import Fields, Member
from ..state.counts import ValueCounts
from ..state.moments import Moments
from ..state.protocol import register as register_state
from ..state.runs import NullCounts
from .base import Operation, Params, register

OTHER = "__other__"
MAX_LEVELS = 100


@register_state("level_counts")
class LevelCounts(ValueCounts):
    """Counts of a categorical feature's levels, as text; a null is the level "null"."""

    def update(self, series: pl.Series) -> LevelCounts:
        return super().update(series.cast(pl.String).fill_null("null"))

    def merge(self, other: ValueCounts) -> LevelCounts:
        return LevelCounts(super().merge(other).counts)


@dataclass
class FeatureSpec:
    """What a model expects: how each chunk becomes X (and y). Plain JSON."""

    task: str  # classification | regression | cluster
    target: str | None
    numeric: list[str]
    categorical: list[str]
    means: list[float]
    stds: list[float]
    levels: dict  # column -> list of levels (strings), OTHER last
    classes: list = field(default_factory=list)
    y_mean: float = 0.0
    y_std: float = 1.0
    scale: bool = True  # standardise numbers (naive Bayes wants them raw)
    class_counts: list = field(default_factory=list)

    def columns(self, with_target: bool) -> list[str]:
        """The input columns this spec reads (and the target, when asked and there is one)."""
        target = [self.target] if with_target and self.target else []
        return list(dict.fromkeys(self.numeric + self.categorical + target))

    @property
    def names(self) -> list[str]:
        cats = [f"{c}={lv}" for c in self.categorical for lv in self.levels[c]]
        return list(self.numeric) + cats

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpec:
        return cls(**data)

    def matrix(self, frame: pl.DataFrame, where: str) -> np.ndarray:
        """Features of one chunk as a float64 matrix (rows x names), built in place."""
        missing = [c for c in self.numeric + self.categorical if c not in frame.columns]
        if missing:
            raise BigprepError(f"{where}: feature column(s) {', '.join(map(repr, missing))} "
                               "missing; the model was trained with them.")
        if self.numeric:
            infinite = frame.select(pl.col(c).cast(pl.Float64).is_infinite().sum()
                                    for c in self.numeric).row(0)
            for column, count in zip(self.numeric, infinite):
                if count:
                    raise BigprepError(_INFINITE.format(where=where, column=column,
                                                        count=f"{count:,}"))
        width = len(self.numeric) + sum(len(self.levels[c]) for c in self.categorical)
        X = np.zeros((frame.height, width))
        if self.numeric:
            means = np.asarray(self.means)
            scales = np.where(np.asarray(self.stds) > 0, self.stds, 1.0) if self.scale else 1.0
            shift = means if self.scale else 0.0
            # nulls become the mean, then everything is standardised: one expression each
            X[:, :len(self.numeric)] = frame.select(
                ((pl.col(c).cast(pl.Float64).fill_nan(None).fill_null(m) - s) / d)
                for c, m, s, d in zip(self.numeric, means, np.broadcast_to(shift, means.shape),
                                      np.broadcast_to(scales, means.shape))).to_numpy()
        start, rows = len(self.numeric), np.arange(frame.height)
        for c in self.categorical:
            levels = self.levels[c]
            codes = (frame[c].cast(pl.String).fill_null("null")
                     .replace_strict(levels[:-1], list(range(len(levels) - 1)),
                                     default=len(levels) - 1, return_dtype=pl.Int64).to_numpy())
            X[rows, start + codes] = 1.0  # one-hot
            start += len(levels)
        return X

    def labels(self, frame: pl.DataFrame, where: str) -> np.ndarray:
        y = frame[self.target]
        nulls = y.null_count() + (int(y.is_nan().sum()) if y.dtype.is_float() else 0)
        if nulls:  # new partitions are read here only: the first fit counted its own
            raise BigprepError(f"{where}: target {self.target!r} is null in {nulls:,} "
                               "rows. Drop or impute those rows first.")
        if self.task == "regression":
            count = int(y.cast(pl.Float64).is_infinite().sum())
            if count:
                raise BigprepError(_INFINITE.format(where=where, column=self.target,
                                                    count=f"{count:,}"))
            return (y.cast(pl.Float64).to_numpy() - self.y_mean) / self.y_std
        values = y.to_numpy()
        unseen = set(y.drop_nulls().unique().to_list()) - set(self.classes)
        if unseen:
            raise BigprepError(f"{where}: target {self.target!r} holds label(s) "
                               f"{sorted(unseen, key=str)[:5]} the model never saw (classes "
                               f"{self.classes}). Retrain with data that has them.")
        return values


def select_features(schema: dict, target: str | None, patterns: list[str],
                    categorical: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns from glob patterns; checks types."""
    columns = [c for c in schema if c != target]
    chosen = [c for c in columns if any(fnmatch.fnmatchcase(c, p) for p in patterns)] \
        if patterns else columns
    for c in categorical:
        if c not in schema:
            raise BigprepError(f"`categorical` {c}: column {c!r} is not in the data.")
    if patterns and not chosen:
        raise BigprepError(f"`features` {','.join(patterns)}: matches no column. "
                           f"Columns: {', '.join(columns)}.")
    chosen = list(dict.fromkeys(chosen + [c for c in categorical if c != target]))
    numeric = [c for c in chosen if c not in categorical]
    for c in numeric:
        if not is_numeric(schema[c]):
            raise BigprepError(
                f"feature {c!r} is {schema[c]}, not a number. Declare it categorical "
                f"(`categorical` {c}) or leave it out of `features`.")
    return numeric, [c for c in chosen if c in categorical]


TASKS = ("classification", "regression", "cluster")


class EncodeParams(Params):
    task: Literal["classification", "regression", "cluster"] = "classification"
    target: str | None = Field(None, description="The column to predict (not for clusters).")
    features: tuple[str, ...] = Field((), description="Feature columns as glob patterns; "
                                      "default: every column but the target.")
    categorical: tuple[str, ...] = Field((), description="Columns to one-hot encode.")
    scale: bool = Field(True, description="Standardise numbers (naive Bayes wants them raw).")


@register
class Encode(Operation):
    """Learn the classes, scaling and levels (fit); rows to the model's matrix (apply)."""

    name = "encode"
    title = "feature encoding"
    Params = EncodeParams

    def plan(self, dataset: Dataset, prior):
        p = self.params
        target = p.target if p.task != "cluster" else None
        if p.task != "cluster":
            if not target:
                raise BigprepError(f"a {p.task} model needs `target` COLUMN.")
            dataset.require(target, "target", scalar=True)
        return (target, *select_features(dataset.polars_schema, target, list(p.features),
                                         list(p.categorical)))

    def reduction(self, plan, dataset, prior, learn):
        target, numeric, categorical = plan
        members = {"nulls": Member(NullCounts())}
        members.update({f"num:{c}": Member(Moments(second=True), c) for c in numeric})
        members.update({f"cat:{c}": Member(LevelCounts(), c) for c in categorical})
        if target:
            members["target"] = Member(ValueCounts() if self.params.task == "classification"
                                       else Moments(second=True), target)
        return Fields(members, tuple(dict.fromkeys([*numeric, *categorical,
                                                    *([target] if target else [])])))

    def finish(self, plan, stats, dataset, prior, learn, **_) -> FeatureSpec:
        return spec_of(self.params, plan, stats)

    def transformer(self, fitted: FeatureSpec, dataset: Dataset, **_):
        return EncodeTransform(fitted)


_INFINITE = ("{where}: column {column!r} holds {count} infinite value(s) (+inf or -inf); "
             "models need finite numbers, as scikit-learn does. Replace them with nulls "
             "(then impute) or clip them, or leave the column out (`features`).")


def spec_of(params: EncodeParams, plan, stats: Fields) -> FeatureSpec:
    target, numeric, categorical = plan
    task = params.task
    classes, counts, y_mean, y_std = [], [], 0.0, 1.0
    if target:
        rows, nulls = stats["nulls"].rows, stats["nulls"].nulls.get(target, 0)
        if nulls:
            raise BigprepError(f"target {target!r} is null in {nulls:,} of {rows:,} rows. "
                               "Drop or impute those rows first.")
        seen = stats["target"]
        if task == "classification":
            found = 0 if seen.counts is None else seen.counts.height
            if found < 2:
                raise BigprepError(f"target {target!r} needs at least two classes to learn "
                                   f"from; found {found}.")
            table = seen.counts.sort("value")
            classes, counts = table["value"].to_list(), table["count"].to_list()
        else:
            if seen.count == 0:
                raise BigprepError(f"target {target!r} has no values.")
            y_mean, y_std = seen.mean, seen.std or 1.0
    levels = {}
    for c in categorical:
        seen = stats[f"cat:{c}"]
        top = [] if seen.counts is None else seen.ranked()["value"].head(MAX_LEVELS).to_list()
        levels[c] = sorted(top) + [OTHER]
    for c in numeric + ([target] if target and task == "regression" else []):
        moments = stats[f"num:{c}"] if c != target else stats["target"]
        if not all(math.isfinite(v) for v in (moments.mean, moments.std or 0.0)
                   if v is not None):
            raise BigprepError(_INFINITE.format(where="the training data", column=c, count="some"))
    return FeatureSpec(task, target, numeric, categorical,
                       [stats[f"num:{c}"].mean for c in numeric],
                       [stats[f"num:{c}"].std for c in numeric], levels, classes, y_mean,
                       y_std, params.scale, counts)


@dataclass
class EncodeTransform(MapDefaults):
    """Rows to the model's matrix, one float64 column per feature name."""

    spec: FeatureSpec
    nan_as_null = None

    @property
    def reads(self) -> list[str]:
        return self.spec.columns(False)

    @property
    def schema(self) -> pl.Schema:
        return pl.Schema(dict.fromkeys(self.spec.names, pl.Float64))

    def transform(self, chunk) -> pl.DataFrame:
        X = self.spec.matrix(chunk.frame, chunk.where())
        return pl.DataFrame(X, schema=self.schema, orient="row")


def chunk_list(dataset: Dataset, chunk_rows: int) -> list[tuple[Partition, int, int]]:
    return [(p, start, length) for p in dataset.partitions
            for start, length in chunk_spans(p, chunk_rows)]


def read_chunk(item, columns: list[str]) -> pl.DataFrame:
    partition, start, length = item
    return read_span(partition, start, length, columns)


def validation_mask(positions: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A stable split: a row is for validation by a hash of its position (splitmix64)."""
    if share <= 0:
        return np.zeros(len(positions), dtype=bool)
    z = positions.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53) < share

