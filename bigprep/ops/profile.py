"""``profile`` as an operation: what is missing where, before imputing.

Per column: type, rows, nulls, null share, the longest run of consecutive nulls
(across file boundaries: ``state.runs.NullRuns`` merges by concatenation) and the
nulls of every partition. One reduction, no output files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..io.dataset import Dataset
from ..state.composite import Fields, Member
from ..state.protocol import StateBase
from ..state.protocol import register as register_state
from ..state.runs import NullRuns
from .base import Operation, Params, register


@register_state("nulls_by_partition")
@dataclass
class NullsByPartition(StateBase):
    """The nulls of every column per partition, in stream order.

    >>> import polars as pl
    >>> from bigprep.io.dataset import Chunk, Partition
    >>> part = Partition("p.parquet", "p.parquet", 0, (2,))
    >>> NullsByPartition().update(Chunk(pl.DataFrame({"x": [1, None]}), part, 0)).result()
    {'p.parquet': {'x': 1}}
    """

    CHUNK = "chunk"
    nulls: dict = field(default_factory=dict)  # partition -> column -> nulls

    def update(self, chunk) -> NullsByPartition:
        counts = self.nulls.setdefault(chunk.partition.rel, {})
        for name, n in zip(chunk.frame.columns, chunk.frame.null_count().row(0)):
            counts[name] = counts.get(name, 0) + n
        return self

    def merge(self, other: NullsByPartition) -> NullsByPartition:
        out = {k: dict(v) for k, v in self.nulls.items()}
        for part, counts in other.nulls.items():
            mine = out.setdefault(part, {})
            for name, n in counts.items():
                mine[name] = mine.get(name, 0) + n
        return NullsByPartition(out)

    def result(self) -> dict:
        return self.nulls

    def to_payload(self, sidecar: dict, key: str) -> dict:
        return self.nulls

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> NullsByPartition:
        return cls({k: dict(v) for k, v in data.items()})


class ProfileParams(Params):
    """Only ``chunk_rows``: profile has nothing to choose."""


@register
class Profile(Operation):
    name = "profile"
    title = "profile"
    Params = ProfileParams

    def plan(self, dataset: Dataset, prior):
        return dataset.columns

    def reduction(self, columns, dataset, prior, learn):
        members = {f"runs:{c}": Member(NullRuns(), c) for c in columns}
        members["partitions"] = Member(NullsByPartition())
        return Fields(members, tuple(columns))

    def finish(self, columns, reduced: Fields, dataset: Dataset, prior, learn, **_) -> dict:
        per = reduced["partitions"].nulls
        out = {"rows": dataset.rows, "partitions": [p.rel for p in dataset.partitions],
               "columns": {}}
        for c in columns:
            runs = reduced[f"runs:{c}"]
            out["columns"][c] = {
                "type": str(dataset.dtype(c)), "rows": runs.rows, "nulls": runs.nulls,
                "null_share": runs.nulls / runs.rows if runs.rows else 0.0,
                "longest_null_run": runs.longest,
                "nulls_per_partition": [per.get(p.rel, {}).get(c, 0)
                                        for p in dataset.partitions]}
        return out
