"""Property tests of the merge laws every state must obey.

merge is associative, an empty state is the identity, merging equals updating
with the concatenation, and a state survives a JSON (+ sidecar) round trip.
Also: any partitioning of the same rows gives the same output.
"""

from __future__ import annotations

import itertools
import json
import tempfile

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigprep.impute.job import impute
from bigprep.impute.stats import MeanState, MedianState, ModeState
from bigprep.profile import NullRuns
from tests.helpers import read_output, write_partitions

values = st.lists(st.one_of(st.none(), st.integers(-5, 5).map(float),
                            st.floats(-1e6, 1e6, allow_nan=False)), max_size=30)
three = st.tuples(values, values, values)


def of(cls, data):
    state = cls()
    state.update(pl.Series(data, dtype=pl.Float64))
    return state


def canon(state):
    if isinstance(state, MeanState):  # float sums agree up to rounding
        return (state.count, pytest.approx(state.total, rel=1e-12, abs=1e-6))
    if isinstance(state, ModeState):
        return None if state.counts is None else sorted(state.counts.iter_rows())
    if isinstance(state, MedianState):
        vals = None if state.values is None else sorted(state.values.tolist())
        hist = None if state.hist is None else state.hist.tolist()
        return (state.below, state.above, hist, vals)
    return state


@given(three)
@settings(max_examples=60, deadline=None)
def test_merge_is_associative_and_empty_is_identity(chunks):
    for cls in (MeanState, ModeState, MedianState):
        a, b, c = (of(cls, x) for x in chunks)
        assert canon(a.merge(b).merge(c)) == canon(a.merge(b.merge(c)))
        assert canon(a.merge(of(cls, []))) == canon(a) == canon(of(cls, []).merge(a))
        assert canon(a.merge(b).merge(c)) == canon(of(cls, chunks[0] + chunks[1] + chunks[2]))


@given(three)
@settings(max_examples=60, deadline=None)
def test_null_runs_merge_is_concatenation(chunks):
    a, b, c = (NullRuns.of(pl.Series(x, dtype=pl.Float64)) for x in chunks)
    whole = NullRuns.of(pl.Series(chunks[0] + chunks[1] + chunks[2], dtype=pl.Float64))
    assert a.merge(b).merge(c) == a.merge(b.merge(c)) == whole
    assert a.merge(NullRuns()) == a == NullRuns().merge(a)


@given(values.filter(lambda v: any(x is not None for x in v)))
@settings(max_examples=60, deadline=None)
def test_states_round_trip_through_json_and_sidecar(data):
    for cls in (MeanState, ModeState, MedianState):
        state = of(cls, data)
        sidecar: dict = {}
        text = json.dumps(state.to_dict(sidecar, "k"))
        back = cls.from_dict(json.loads(text), sidecar, "k", pl.Float64)
        assert back.value() == state.value()
        if cls is not MedianState:
            assert canon(back) == canon(state)


@given(values.filter(lambda v: any(x is not None for x in v)))
@settings(max_examples=60, deadline=None)
def test_median_is_exact(data):
    expected = float(np.median([x for x in data if x is not None]))
    assert of(MedianState, data).value() == expected


@pytest.mark.parametrize("kind", ["repeated", "dense", "integers"])
def test_median_stays_exact_when_values_outnumber_the_cap(monkeypatch, kind):
    from bigprep.impute import stats

    monkeypatch.setattr(stats, "WINDOW", 20)
    monkeypatch.setattr(stats, "COLLECT_CAP", 300)
    rng = np.random.default_rng(3)
    data = {"repeated": np.concatenate([rng.normal(0, 1, 4000), np.full(3001, 0.25)]),
            "dense": rng.normal(20, 1e-6, 7000),  # most values in one top-level bucket
            "integers": rng.integers(-10**12, 10**12, 7000)}[kind]
    state = stats.MedianState()
    state.cap = 100
    for part in np.array_split(data, 9):
        piece = state.spawn()
        piece.update(pl.Series(part))
        state = state.merge(piece)
    passes = 1
    while (follow := state.next_pass()) is not None:
        if follow.done:
            state = follow
            break
        merged = follow.spawn()
        for part in np.array_split(data, 5):
            piece = follow.spawn()
            piece.update(pl.Series(part))
            merged = merged.merge(piece)
        state, passes = merged, passes + 1
    assert passes >= 2
    assert state.value() == float(np.median(data))


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
