"""Null counts and null runs: what is missing where.

``NullRuns`` is the longest run of consecutive nulls of one column; it merges by
concatenation ((rows, nulls, leading, trailing, longest) of the earlier rows, then
the later). ``NullCounts`` counts rows and the nulls of every column of a chunk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import polars as pl

from .protocol import StateBase, register


@register("null_runs")
@dataclass
class NullRuns(StateBase):
    """Null runs of one column over a stretch of rows; merge is concatenation.

    >>> a = NullRuns().update(pl.Series([1, None, None]))
    >>> a.merge(NullRuns().update(pl.Series([None, 2]))).longest
    3
    """

    rows: int = 0
    nulls: int = 0
    leading: int = 0
    trailing: int = 0
    longest: int = 0

    def update(self, series: pl.Series) -> NullRuns:
        runs = series.is_null().rle().struct.unnest()
        if runs.height:
            lens, vals = runs["len"].to_list(), runs["value"].to_list()
            null_lens = [n for n, v in zip(lens, vals) if v]
            chunk = NullRuns(len(series), sum(null_lens), lens[0] if vals[0] else 0,
                             lens[-1] if vals[-1] else 0, max(null_lens, default=0))
            self.__dict__.update(asdict(self.merge(chunk)))
        return self

    def merge(self, other: NullRuns) -> NullRuns:
        all_null = self.nulls == self.rows
        other_all_null = other.nulls == other.rows
        return NullRuns(
            self.rows + other.rows, self.nulls + other.nulls,
            self.rows + other.leading if all_null else self.leading,
            other.rows + self.trailing if other_all_null else other.trailing,
            max(self.longest, other.longest, self.trailing + other.leading))

    def result(self) -> dict:
        return asdict(self)

    def to_payload(self, sidecar: dict, key: str) -> dict:
        return asdict(self)

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> NullRuns:
        return cls(**data)


@register("null_counts")
@dataclass
class NullCounts(StateBase):
    """Rows, and the nulls of every column, of whole chunks.

    >>> NullCounts().update(pl.DataFrame({"x": [1.0, None, 3.0]})).result()
    {'rows': 3, 'nulls': {'x': 1}}
    """

    CHUNK = "chunk"
    rows: int = 0
    nulls: dict = field(default_factory=dict)

    def update(self, chunk) -> NullCounts:
        frame = getattr(chunk, "frame", chunk)
        self.rows += frame.height
        for name, count in zip(frame.columns, frame.null_count().row(0)):
            self.nulls[name] = self.nulls.get(name, 0) + count
        return self

    def merge(self, other: NullCounts) -> NullCounts:
        names = dict.fromkeys([*self.nulls, *other.nulls])
        return NullCounts(self.rows + other.rows,
                          {c: self.nulls.get(c, 0) + other.nulls.get(c, 0) for c in names})

    def result(self) -> dict:
        return {"rows": self.rows, "nulls": dict(self.nulls)}

    def to_payload(self, sidecar: dict, key: str) -> dict:
        return self.result()

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> NullCounts:
        return cls(data["rows"], dict(data["nulls"]))
