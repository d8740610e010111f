"""``bigprep profile``: what is missing where, before imputing.

Per column: type, rows, nulls, null share, the longest run of consecutive
nulls (across file boundaries) and the nulls of every partition. The longest run
is a mergeable state too: (rows, leading nulls, trailing nulls, longest run).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from .dataset import DEFAULT_CHUNK_ROWS, Partition, iter_chunks, open_dataset
from .executor import Executor


@dataclass
class NullRuns:
    """Null runs of one column over a stretch of rows; merge is concatenation.

    >>> a, b = NullRuns.of(pl.Series([1, None, None])), NullRuns.of(pl.Series([None, 2]))
    >>> a.merge(b).longest
    3
    """

    rows: int = 0
    nulls: int = 0
    leading: int = 0
    trailing: int = 0
    longest: int = 0

    @classmethod
    def of(cls, series: pl.Series) -> NullRuns:
        runs = series.is_null().rle().struct.unnest()
        if not runs.height:
            return cls()
        lens, vals = runs["len"].to_list(), runs["value"].to_list()
        null_lens = [n for n, v in zip(lens, vals) if v]
        return cls(len(series), sum(null_lens), lens[0] if vals[0] else 0,
                   lens[-1] if vals[-1] else 0, max(null_lens, default=0))

    def merge(self, other: NullRuns) -> NullRuns:
        all_null = self.nulls == self.rows
        other_all_null = other.nulls == other.rows
        return NullRuns(
            self.rows + other.rows, self.nulls + other.nulls,
            self.rows + other.leading if all_null else self.leading,
            other.rows + self.trailing if other_all_null else other.trailing,
            max(self.longest, other.longest, self.trailing + other.leading))


@dataclass
class ColumnProfile:
    runs: NullRuns = field(default_factory=NullRuns)
    per_partition: list = field(default_factory=list)

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        return ColumnProfile(self.runs.merge(other.runs), self.per_partition + other.per_partition)


def profile_partition(job: tuple[Partition, list[str], int]) -> dict:
    partition, columns, chunk_rows = job
    runs = {c: NullRuns() for c in columns}
    for _, frame in iter_chunks(partition, columns, chunk_rows):
        for c in columns:
            runs[c] = runs[c].merge(NullRuns.of(frame[c]))
    return {c: ColumnProfile(r, [r.nulls]) for c, r in runs.items()}


def merge_profiles(a: dict, b: dict) -> dict:
    return {c: a[c].merge(b[c]) for c in a}


def profile(inputs, *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
            executor: Executor | None = None, storage_options: dict | None = None) -> dict:
    """Profile the nulls of a dataset; returns a JSON-ready dict."""
    executor = executor or Executor()
    dataset = open_dataset(inputs, storage_options)
    columns = dataset.columns
    merged = executor.tree_reduce(profile_partition,
                                  [(p, columns, chunk_rows) for p in dataset.partitions],
                                  merge_profiles, label="profile")
    out = {"rows": dataset.rows, "partitions": [p.rel for p in dataset.partitions],
           "columns": {}}
    for c in columns:
        prof = merged[c]
        out["columns"][c] = {
            "type": str(dataset.dtype(c)), "rows": prof.runs.rows, "nulls": prof.runs.nulls,
            "null_share": prof.runs.nulls / prof.runs.rows if prof.runs.rows else 0.0,
            "longest_null_run": prof.runs.longest, "nulls_per_partition": prof.per_partition}
    return out
