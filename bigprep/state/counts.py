"""The key-counts family: rows counted by key, merged by summing equal keys.

``ValueCounts`` serves the mode, the categorical levels and the classes of models;
``TermCounts`` the document and term frequencies of TF-IDF (with the number of
documents). Both keep a polars frame of (key, counts...) and share one merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import polars as pl

from ..io.values import frame_from_bytes, frame_to_bytes, to_json_value
from .protocol import StateBase, register, statistic

DOC, TERM, DF, TF = "__bp_doc", "__bp_term", "df", "tf"


def sum_counts(a: pl.DataFrame | None, b: pl.DataFrame | None, key: str,
               sums: tuple[str, ...]) -> pl.DataFrame | None:
    """Counts of both, equal keys summed (None is the empty table)."""
    if a is None or b is None:
        return a if b is None else b
    return pl.concat([a, b]).group_by(key).agg(pl.col(c).sum() for c in sums)


def _in_key_order(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """The counts sorted by key: a hash aggregation's row order varies from run to run,
    and a saved state should not (the same data saves the same bytes)."""
    if isinstance(frame.schema[key], (pl.Categorical, pl.Enum)):
        return frame.sort(pl.col(key).cast(pl.String), nulls_last=True)
    return frame.sort(key, nulls_last=True)


def _sorted_rows(frame: pl.DataFrame | None) -> list | None:
    return None if frame is None else sorted(frame.iter_rows(), key=repr)


@statistic("mode", numeric_only=False)
@register("value_counts")
@dataclass
class ValueCounts(StateBase):
    """Counts of each value; the result is the mode, ties to the smallest value
    (categories by their text), as scikit-learn's most_frequent.

    >>> ValueCounts().update(pl.Series(["b", "a", None, "b", "a"])).result()
    'a'
    """

    counts: pl.DataFrame | None = None  # value, count

    def update(self, series: pl.Series) -> ValueCounts:
        values = series.drop_nulls()
        if len(values):
            frame = values.rename("value").value_counts(name="count")
            self.counts = sum_counts(self.counts, frame.cast({"count": pl.Int64}), "value",
                                     ("count",))
        return self

    def merge(self, other: ValueCounts) -> ValueCounts:
        return ValueCounts(sum_counts(self.counts, other.counts, "value", ("count",)))

    @property
    def count(self) -> int:
        return 0 if self.counts is None else int(self.counts["count"].sum())

    def ranked(self) -> pl.DataFrame:
        """Values by count, ties by value (categories by their text, as scikit-learn)."""
        by = pl.col("value")
        if isinstance(self.counts.schema["value"], (pl.Categorical, pl.Enum)):
            by = by.cast(pl.String)
        return self.counts.sort([pl.col("count"), by], descending=[True, False])

    def result(self):
        return self.ranked().row(0)[0] if self.count else None

    exact = result

    def canonical(self):
        return _sorted_rows(self.counts)

    def to_payload(self, sidecar: dict, key: str) -> dict:
        if not self.count:
            return {"count": 0, "value": None, "distinct": 0}
        sidecar[key] = frame_to_bytes(_in_key_order(self.counts, "value"))
        top = self.ranked()
        return {"count": self.count, "value": to_json_value(top["value"][0]),
                "value_count": int(top["count"][0]), "distinct": top.height,
                "top": [[to_json_value(v), int(c)] for v, c in top.head(10).iter_rows()]}

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> ValueCounts:
        return cls(frame_from_bytes(sidecar[key]) if data["count"] else None)


class TermChunk(NamedTuple):
    """A chunk's documents as term occurrences: (DOC, TERM) rows, and the document
    count (documents without terms count too)."""

    occurrences: pl.DataFrame
    documents: int


@register("term_counts")
@dataclass
class TermCounts(StateBase):
    """Documents seen, and per term (or hashed column) its document and total counts.

    >>> s = TermCounts().update(TermChunk(pl.DataFrame({DOC: [0, 0, 1], TERM: ["a", "a", "b"]}), 3))
    >>> s.documents, sorted(s.counts.rows())
    (3, [('a', 1, 2), ('b', 1, 1)])
    """

    CHUNK = "terms"
    documents: int = 0
    counts: pl.DataFrame | None = None  # TERM, DF, TF

    def update(self, chunk: TermChunk) -> TermCounts:
        self.documents += chunk.documents
        occ = chunk.occurrences
        if occ.height:
            counted = occ.group_by(TERM).agg(pl.col(DOC).n_unique().cast(pl.Int64).alias(DF),
                                             pl.len().cast(pl.Int64).alias(TF))
            self.counts = sum_counts(self.counts, counted, TERM, (DF, TF))
        return self

    def merge(self, other: TermCounts) -> TermCounts:
        return TermCounts(self.documents + other.documents,
                          sum_counts(self.counts, other.counts, TERM, (DF, TF)))

    def result(self) -> pl.DataFrame | None:
        return self.counts

    def canonical(self):
        return self.documents, _sorted_rows(self.counts)

    def to_payload(self, sidecar: dict, key: str) -> dict:
        if self.counts is not None:
            sidecar[key] = frame_to_bytes(_in_key_order(self.counts, TERM))
        top = [] if self.counts is None else \
            self.counts.sort([DF, TERM], descending=[True, False]).head(20).rows()
        return {"documents": self.documents,
                "terms": 0 if self.counts is None else self.counts.height, "most_common": top}

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> TermCounts:
        return cls(data["documents"], frame_from_bytes(sidecar[key]) if key in sidecar else None)
