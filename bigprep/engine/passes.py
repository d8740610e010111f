"""The one chunk loop, the one multi-pass driver and the one per-partition writer.

fit is a reduction: every partition is folded chunk by chunk into an empty state,
and the partition states merge in a balanced tree, in stream order. A state that
needs more passes (an exact median) says so with ``next_pass()``; ``run_passes``
drives every such state alike. apply is a map: each partition is transformed
chunk by chunk (or as one polars streaming query when the transform allows) and
written atomically to its output path; then the manifest lists what was written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import polars as pl

from ..errors import BigprepError, in_partition
from ..io.commit import Commit
from ..io.dataset import Chunk, Dataset, Partition, iter_chunks, normalize, verify
from ..io.sink import sink_query, write_partition


def fold_partition(job) -> object:
    """Fold one partition's chunks into an empty copy of ``template``."""
    partition, template, reads, chunk_rows, prepare = job
    state = template.empty()
    try:
        for offset, frame in iter_chunks(partition, reads, chunk_rows):
            chunk = Chunk(frame, partition, offset)
            state.update(prepare(chunk) if prepare is not None else chunk)
    except BigprepError as err:
        raise in_partition(err, partition.path) from None
    return state


def _merge(a, b):
    return a.merge(b)


def run_passes(template, one_pass: Callable):
    """``one_pass(template)`` until the state needs no further pass."""
    state = one_pass(template).finish()
    while (follow := state.next_pass()) is not None:
        state = state.with_pass(one_pass(follow).finish())
    return state


def reduce(partitions: Sequence[Partition], template, executor, *, chunk_rows: int,
           reads: list[str] | None = None, prepare: Callable | None = None,
           label: str = "fit", read_all: bool = False):
    """The fitted state of ``template`` over ``partitions`` (every pass it needs).

    ``reads`` are the columns to read (default: the state's own ``reads``; every
    column with ``read_all``); ``prepare`` turns a chunk into what the state's
    ``update`` takes.
    """
    def one_pass(state):
        columns = None if read_all else getattr(state, "reads", None) \
            if reads is None or state is not template else reads
        jobs = [(p, state, columns, chunk_rows, prepare) for p in partitions]
        return executor.tree_reduce(fold_partition, jobs, _merge, label=label)
    state = run_passes(template, one_pass)
    for partition in partitions:  # a file changed after it was read: the state mixes two
        verify(partition)
    return state


class Stacked:
    """Several reductions folded in one read: member ``i`` takes ``prepares[i]`` of each
    chunk (the fits of a pipeline's steps sharing a read). Each member keeps its own
    passes: a member done early waits (None in a later pass) while another, such as an
    exact median, narrows down."""

    CHUNK = "chunk"

    def __init__(self, states: Sequence, prepares: Sequence, reads: Sequence):
        self.states, self.prepares, self.columns = list(states), list(prepares), list(reads)

    @property
    def reads(self) -> list[str] | None:
        """Every member's columns (None: every column)."""
        live = [r for s, r in zip(self.states, self.columns) if s is not None]
        if any(r is None for r in live):
            return None
        return list(dict.fromkeys(c for r in live for c in r))

    def _with(self, states) -> Stacked:
        reads = [getattr(s, "reads", None) if s is not None else None for s in states]
        return Stacked(states, self.prepares, reads)

    def empty(self) -> Stacked:
        return Stacked([s.empty() if s is not None else None for s in self.states],
                       self.prepares, self.columns)

    def update(self, chunk) -> Stacked:
        for state, prepare in zip(self.states, self.prepares):
            if state is not None:
                state.update(prepare(chunk) if prepare is not None else chunk)
        return self

    def merge(self, other: Stacked) -> Stacked:
        return Stacked([a.merge(b) if a is not None else None
                        for a, b in zip(self.states, other.states)],
                       self.prepares, self.columns)

    def finish(self) -> Stacked:
        return Stacked([s.finish() if s is not None else None for s in self.states],
                       self.prepares, self.columns)

    def next_pass(self) -> Stacked | None:
        follow = [s.next_pass() if s is not None else None for s in self.states]
        return self._with(follow) if any(f is not None for f in follow) else None

    def with_pass(self, done: Stacked) -> Stacked:
        return Stacked([s.with_pass(d) if d is not None else s
                        for s, d in zip(self.states, done.states)],
                       self.prepares, self.columns)


class MapDefaults:
    """What most transforms share: every partition alike, no per-file numbers, no
    streaming query (so chunk by chunk)."""

    def for_partition(self, partition: Partition):
        return self

    def counts(self, out) -> dict:
        return {}

    def lazy(self, partition: Partition):
        return None


class ChunkTransform(Protocol):
    """A fitted transform as the writer uses it; plain data, so it pickles to workers."""

    schema: pl.Schema  # of the output
    reads: list[str] | None  # columns to read (None: all)
    nan_as_null: Sequence[str] | None  # columns whose NaN is missing (None: all read)

    def for_partition(self, partition: Partition) -> ChunkTransform: ...
    def transform(self, chunk: Chunk) -> pl.DataFrame: ...
    def counts(self, out: pl.DataFrame) -> dict: ...  # per-file numbers for the report
    def lazy(self, partition: Partition) -> pl.LazyFrame | None: ...  # a streaming query


class Chained(MapDefaults):
    """Transforms applied one after another to each chunk: several steps, one read and
    one write (a pipeline's fused apply). Each step sees its predecessor's output."""

    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)
        self.schema = self.transforms[-1].schema
        self.reads = None  # every column: later steps may need what earlier ones pass on
        wanted = [t.nan_as_null for t in self.transforms]
        self.nan_as_null = None if any(w is None for w in wanted) else \
            list(dict.fromkeys(c for w in wanted for c in w))

    def for_partition(self, partition: Partition) -> Chained:
        return Chained([t.for_partition(partition) for t in self.transforms])

    def transform(self, chunk: Chunk) -> pl.DataFrame:
        frame = chunk.frame
        for t in self.transforms:
            frame = t.transform(Chunk(normalize(frame, t.nan_as_null), chunk.partition,
                                      chunk.offset))
        return frame

    def __call__(self, chunk: Chunk) -> Chunk:
        """As a fit's ``prepare``: the chunk as the steps before the fitted one leave it."""
        return Chunk(self.for_partition(chunk.partition).transform(chunk), chunk.partition,
                     chunk.offset)

    def counts(self, out) -> dict:
        return self.transforms[0].counts(out) if len(self.transforms) == 1 else {}

    def lazy(self, partition: Partition):
        return self.transforms[0].lazy(partition) if len(self.transforms) == 1 else None


def write_one(job) -> dict:
    """Transform one partition and write it atomically to ``final`` (in the staging
    folder)."""
    partition, transform, chunk_rows, final, compression = job
    try:
        return _write_one(partition, transform, chunk_rows, final, compression)
    except BigprepError as err:
        raise in_partition(err, partition.path) from None
    except pl.exceptions.PolarsError as exc:  # polars reads the input of a streaming query
        raise BigprepError(f"{partition.path}: cannot be read ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0]}). The file is damaged: re-export it "
                           "or leave it out; nothing was published.", partition.path) from None
    except Exception as exc:  # noqa: BLE001 - storage and engine errors of every kind
        raise BigprepError(f"{partition.path}: its output cannot be written "
                           f"({type(exc).__name__}: {exc}). Nothing was published; fix the "
                           "cause and run again.") from None


def _write_one(partition, transform, chunk_rows, final, compression) -> dict:
    # a pure per-row map: polars streams read and fill (it reads no page checksums)
    query = None if partition.remote or partition.checksummed else transform.lazy(partition)
    if query is not None:
        verify(partition)
        rows = sink_query(final, query, compression, chunk_rows, partition.options)
        return {"file": partition.rel, "rows": rows, **transform.counts(None)}
    totals: dict = {}
    rows = 0

    def chunks():
        nonlocal rows
        for offset, frame in iter_chunks(partition, transform.reads, chunk_rows,
                                         nan_as_null=transform.nan_as_null):
            out = transform.transform(Chunk(frame, partition, offset))
            for key, value in transform.counts(out).items():
                totals[key] = _add(totals.get(key), value)
            rows += out.height
            yield out

    write_partition(final, chunks(), transform.schema, compression, chunk_rows,
                    partition.options)
    return {"file": partition.rel, "rows": rows, **totals}


def _add(a, b):
    if a is None:
        return b
    return {k: a.get(k, 0) + v for k, v in b.items()} if isinstance(b, dict) else a + b


def write_each(dataset: Dataset, commit: Commit, transform: ChunkTransform, executor, *,
               chunk_rows: int, label: str, compression: str | None = "zstd") -> list[dict]:
    """The apply map: one output file per input, at its relative path below the output
    folder, published together once all are written and every input is unchanged."""
    with commit.run():
        jobs = [(p, transform.for_partition(p), chunk_rows, commit.staged(p.rel),
                 compression) for p in dataset.partitions]
        files = executor.map(write_one, jobs, label=label)
        for partition in dataset.partitions:
            verify(partition)
        commit.publish(files)
    return files
