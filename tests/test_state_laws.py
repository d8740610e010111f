"""The merge laws, over every registered state (the registry is iterated, so a new
state cannot skip them): merge is associative, an empty state is the identity,
any chunking of the same rows gives the same state, and a state survives its
payload codec (JSON + sidecar). Also: exact medians, and any partitioning of the
same rows gives the same imputed output.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import pkgutil
import tempfile

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bigprep
from bigprep.engine.passes import run_passes
from bigprep.io.dataset import Chunk, Partition
from bigprep.state.counts import DOC, TERM, TermChunk
from bigprep.state.metrics import Predictions
from bigprep.state.protocol import CHUNK_KINDS, REGISTRY, StateBase
from tests.helpers import impute, read_output, write_partitions

# -- rows of each chunk kind, and how a run of rows becomes one chunk --------------------
number = st.one_of(st.none(), st.integers(-5, 5).map(float), st.floats(-1e6, 1e6))
ROWS = {
    "series": st.lists(number, max_size=25),
    "chunk": st.lists(st.tuples(st.sampled_from(["p", "q"]), number), max_size=25),
    "terms": st.lists(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=5),
                      max_size=12),
    "predictions": st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1),
                                      st.floats(-50, 50)), max_size=25),
}
PART = Partition("p.parquet", "p.parquet", 0, (1000,))


def make_chunk(kind: str, rows: list, offset: int):
    if kind == "series":
        return pl.Series("x", rows, dtype=pl.Float64)
    if kind == "chunk":
        frame = pl.DataFrame({"g": [g for g, _ in rows], "x": [x for _, x in rows]},
                             schema={"g": pl.String, "x": pl.Float64})
        return Chunk(frame, PART, offset)
    if kind == "terms":
        occ = pl.DataFrame({DOC: [i for i, doc in enumerate(rows) for _ in doc],
                            TERM: [t for doc in rows for t in doc]},
                           schema={DOC: pl.Int64, TERM: pl.String})
        return TermChunk(occ, len(rows))
    t, p, s = (np.array([r[i] for r in rows]) for i in range(3))
    return Predictions(t, p, None, s)


def state_of(kind: str, chunk_kind: str, pieces: list[list]):
    """One state per piece of rows, merged in order (each piece a chunk)."""
    merged, offset = REGISTRY[kind].example(), 0
    for rows in pieces:
        merged = merged.merge(REGISTRY[kind].example().update(
            make_chunk(chunk_kind, rows, offset)))
        offset += len(rows)
    return merged


def canon(state):
    if hasattr(state, "canonical"):
        return state.canonical()
    return json.loads(json.dumps(state.to_payload({}, "k"), default=str))


def same(a, b) -> bool:
    """Equal, floats up to rounding (sums in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9,
                                                                 abs_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b



def _import_every_module() -> None:
    """Every module of the package, so every state class defined anywhere registers."""
    for module in pkgutil.walk_packages(bigprep.__path__, "bigprep."):
        if module.name != "bigprep.__main__":
            importlib.import_module(module.name)


_import_every_module()
KINDS = sorted(REGISTRY)


def test_every_state_class_is_registered_and_every_chunk_kind_has_rows():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    registered = {r.cls for r in REGISTRY.values()}
    missing = [c.__qualname__ for c in subclasses(StateBase) if c not in registered]
    assert not missing, f"states outside the registry skip the merge laws: {missing}"
    assert set(ROWS) == set(CHUNK_KINDS)


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_merge_laws(kind, data):
    chunk_kind = REGISTRY[kind].cls.CHUNK
    rows = data.draw(ROWS[chunk_kind])
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), min_size=2, max_size=2)))
    pieces = [rows[:cuts[0]], rows[cuts[0]:cuts[1]], rows[cuts[1]:]]
    a, b, c = (state_of(kind, chunk_kind, [p]) for p in pieces)
    empty = REGISTRY[kind].example()
    # associative; empty is the identity
    assert same(canon(a.merge(b).merge(c)), canon(a.merge(b.merge(c))))
    assert same(canon(a.merge(empty)), canon(a)) and same(canon(empty.merge(a)), canon(a))
    # any chunking gives the state of one chunk holding every row
    whole = REGISTRY[kind].example().update(make_chunk(chunk_kind, rows, 0))
    assert same(canon(a.merge(b).merge(c)), canon(whole))
    # merge returns a new object and leaves its inputs as they were
    before = canon(a)
    assert a.merge(b) is not a and same(canon(a), before)
    # the payload codec: JSON + sidecar
    sidecar: dict = {}
    text = json.dumps(whole.to_payload(sidecar, "k"), default=str)
    back = type(whole).from_payload(json.loads(text), sidecar, "k")
    assert same(canon(back), canon(whole)) or not getattr(whole, "PAYLOAD_EXACT", True)
    assert same(_result(back), _result(whole))


def _result(state):
    return _plain(state.result())


def _plain(value):
    if isinstance(value, pl.DataFrame):
        return sorted(value.rows(), key=repr)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@given(st.lists(number, min_size=1).filter(lambda v: any(x is not None for x in v)))
@settings(max_examples=60, deadline=None)
def test_median_is_exact(data):
    from bigprep.state.quantile import MedianState

    expected = float(np.median([x for x in data if x is not None]))
    assert MedianState().update(pl.Series(data, dtype=pl.Float64)).result() == expected


@pytest.mark.parametrize("kind", ["repeated", "dense", "integers"])
def test_median_stays_exact_when_values_outnumber_the_cap(monkeypatch, kind):
    """The generic multi-pass driver finishes a median that needs several passes."""
    from bigprep.state import quantile

    monkeypatch.setattr(quantile, "WINDOW", 20)
    monkeypatch.setattr(quantile, "COLLECT_CAP", 300)
    rng = np.random.default_rng(3)
    data = {"repeated": np.concatenate([rng.normal(0, 1, 4000), np.full(3001, 0.25)]),
            "dense": rng.normal(20, 1e-6, 7000),  # most values in one top-level bucket
            "integers": rng.integers(-10**12, 10**12, 7000)}[kind]
    passes = []

    def one_pass(template):  # what the engine does over partitions, here over 9 pieces
        passes.append(template)
        merged = template.empty()
        for part in np.array_split(data, 9):
            merged = merged.merge(template.empty().update(pl.Series(part)))
        return merged

    first = quantile.MedianState()
    first.cap = 100
    state = run_passes(first, one_pass)
    assert len(passes) >= 2
    assert state.result() == float(np.median(data))


rows = st.integers(1, 60).flatmap(lambda n: st.tuples(
    st.lists(st.one_of(st.none(), st.floats(-100, 100, allow_nan=False)), min_size=n,
             max_size=n),
    st.lists(st.sampled_from(["p", "q"]), min_size=n, max_size=n),
    st.lists(st.integers(0, n), max_size=4),
    st.integers(1, 7)))


@given(rows)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_partitioning_gives_the_same_output(case):
    xs, gs, cuts, chunk_rows = case
    frame = pl.DataFrame({"g": gs, "x": pl.Series(xs, dtype=pl.Float64)})
    if frame["x"].null_count() == frame.height:
        return
    bounds = sorted(set(cuts) | {0, frame.height})
    sizes = [b - a for a, b in itertools.pairwise(bounds)]
    options = {"columns": {"x": "interpolate,ffill,median"}, "group_by": "g"}
    with tempfile.TemporaryDirectory() as d:
        one = write_partitions(frame, f"{d}/one", [frame.height])
        many = write_partitions(frame, f"{d}/many", sizes, row_group_size=3)
        impute(one, f"{d}/o1", chunk_rows=1000, **options)
        impute(many, f"{d}/o2", chunk_rows=chunk_rows, **options)
        assert read_output(f"{d}/o1", one).equals(read_output(f"{d}/o2", many))
