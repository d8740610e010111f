"""Features out of core: one reduction pass learns what training needs.

Label classes (so ``classes=`` is known before the first ``partial_fit``), the mean
and standard deviation of every numeric feature (mean also fills its nulls),
the levels of every categorical feature, and the target's scale for regression.
Every chunk then becomes one float64 matrix with the same columns.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from ..dataset import Dataset, Partition, iter_chunks
from ..errors import BigprepError
from ..impute.stats import ModeState
from ..impute.values import is_numeric

OTHER = "__other__"
MAX_LEVELS = 100


@dataclass
class Moments:
    """count, mean and sum of squared deviations; merges exactly (Chan et al.).

    >>> a, b = Moments(), Moments(); a.update(np.array([1.0, 2.0])); b.update(np.array([3.0]))
    >>> m = a.merge(b); (m.n, m.mean, round(m.std, 6))
    (3, 2.0, 0.816497)
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, values: np.ndarray) -> None:
        values = values[~np.isnan(values)]
        if len(values):
            self.__dict__.update(asdict(self.merge(
                Moments(len(values), float(values.mean()), float(((values - values.mean()) ** 2)
                                                                 .sum())))))

    def merge(self, other: Moments) -> Moments:
        n = self.n + other.n
        if not n:
            return Moments()
        delta = other.mean - self.mean
        return Moments(n, self.mean + delta * other.n / n,
                       self.m2 + other.m2 + delta * delta * self.n * other.n / n)

    @property
    def std(self) -> float:
        return (self.m2 / self.n) ** 0.5 if self.n else 0.0


@dataclass
class FeatureStats:
    """The reduction state of the feature pass."""

    rows: int = 0
    numeric: dict = field(default_factory=dict)  # column -> Moments
    levels: dict = field(default_factory=dict)  # column -> ModeState
    target: object = None  # ModeState (classes) or Moments (regression)
    target_nulls: int = 0

    def merge(self, other: FeatureStats) -> FeatureStats:
        return FeatureStats(
            self.rows + other.rows,
            {c: m.merge(other.numeric[c]) for c, m in self.numeric.items()},
            {c: m.merge(other.levels[c]) for c, m in self.levels.items()},
            None if self.target is None else self.target.merge(other.target),
            self.target_nulls + other.target_nulls)


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
        if self.task == "regression":
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
            raise BigprepError(f"--categorical {c}: column {c!r} is not in the data.")
    if patterns and not chosen:
        raise BigprepError(f"--features {','.join(patterns)}: matches no column. "
                           f"Columns: {', '.join(columns)}.")
    chosen = list(dict.fromkeys(chosen + [c for c in categorical if c != target]))
    numeric = [c for c in chosen if c not in categorical]
    for c in numeric:
        if not is_numeric(schema[c]):
            raise BigprepError(
                f"feature {c!r} is {schema[c]}, not a number. Declare it categorical "
                f"(--categorical {c}) or leave it out of --features.")
    return numeric, [c for c in chosen if c in categorical]


def stats_partition(job) -> FeatureStats:
    partition, numeric, categorical, target, task, chunk_rows = job
    stats = FeatureStats(numeric={c: Moments() for c in numeric},
                         levels={c: ModeState() for c in categorical},
                         target=None if task == "cluster" else
                         (ModeState() if task == "classification" else Moments()))
    columns = numeric + categorical + ([target] if target else [])
    for _, frame in iter_chunks(partition, list(dict.fromkeys(columns)), chunk_rows):
        stats.rows += frame.height
        for c in numeric:
            stats.numeric[c].update(frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy())
        for c in categorical:
            stats.levels[c].update(frame[c].cast(pl.String).fill_null("null"))
        if target:
            y = frame[target]
            stats.target_nulls += y.null_count()
            if task == "classification":
                stats.target.update(y)
            else:
                stats.target.update(y.cast(pl.Float64).fill_null(np.nan).to_numpy())
    return stats


def learn_spec(dataset: Dataset, executor, *, task: str, target: str | None,
               numeric: list[str], categorical: list[str], chunk_rows: int,
               scale: bool = True) -> FeatureSpec:
    jobs = [(p, numeric, categorical, target, task, chunk_rows) for p in dataset.partitions]
    stats = executor.tree_reduce(stats_partition, jobs, FeatureStats.merge, label="features")
    classes, counts, y_mean, y_std = [], [], 0.0, 1.0
    if target:
        if stats.target_nulls:
            raise BigprepError(f"target {target!r} is null in {stats.target_nulls:,} of "
                               f"{stats.rows:,} rows. Drop or impute those rows first "
                               f"(bigprep impute --column {target}=...).")
        if task == "classification":
            if stats.target.counts is None or stats.target.counts.height < 2:
                raise BigprepError(f"target {target!r} needs at least two classes to learn "
                                   f"from; found {0 if stats.target.counts is None else stats.target.counts.height}.")
            table = stats.target.counts.sort("value")
            classes, counts = table["value"].to_list(), table["count"].to_list()
        else:
            if stats.target.n == 0:
                raise BigprepError(f"target {target!r} has no values.")
            y_mean, y_std = stats.target.mean, stats.target.std or 1.0
    levels = {}
    for c in categorical:
        seen = stats.levels[c]
        top = [] if seen.counts is None else seen.ranked()["value"].head(MAX_LEVELS).to_list()
        levels[c] = sorted(top) + [OTHER]
    return FeatureSpec(task, target, numeric, categorical,
                       [stats.numeric[c].mean for c in numeric],
                       [stats.numeric[c].std for c in numeric], levels, classes, y_mean, y_std,
                       scale, counts)


def chunk_list(dataset: Dataset, chunk_rows: int) -> list[tuple[Partition, int, int]]:
    from ..dataset import chunk_spans

    return [(p, start, length) for p in dataset.partitions
            for start, length in chunk_spans(p, chunk_rows)]


def read_chunk(item, columns: list[str]) -> pl.DataFrame:
    from ..dataset import read_span

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

