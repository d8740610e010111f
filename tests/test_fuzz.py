"""Property test: random schemas, null patterns, partitionings and strategy chains
through ``bigprep.Imputer.fit_transform`` give what an in-memory oracle over the
concatenated rows gives, or a ``BigprepError`` naming the column or parameter at
fault — never a wrong answer and never another exception type.

The oracle follows the README's contract, written out in plain Python, numpy and
fractions over the whole data (no bigprep code):

- missing is null, and NaN in float columns; a NaN an imputed column does not fill
  becomes null, a column left alone is written back as it was;
- mean and median over the non-missing values (integers exact, then rounded half to
  even); mode ties go to the smallest value; +-inf are values, and a statistic that
  comes out infinite (or NaN) is refused ("never a NaN or infinite fill");
- ffill / bfill take the previous / next original valid value across partitions in
  stream order, within the group when ``group_by`` is given (a null key is a group);
- a chain fills what is still null, step by step, every step seeing the input;
- ``columns`` alone imputes only the named columns; ``strategy`` serves every other
  column with nulls it can; neither: mean for numbers, mode for the others; a
  column null in every row is left alone under the defaults and is an error when
  named in ``columns`` with a statistic; ``group_by`` / ``order_by`` columns are
  never defaults; an indicator never replaces an input column;
- an ``order_by`` value that is null or decreases within its group is an error.

- a chain whose statistic has no value (every value null) passes to its constant;
- column names starting with ``__bp_`` are reserved: the run stops naming them;
- a dataset without rows has no nulls: nothing is imputed, no indicator added.

The discrepancies the property found are kept as reduced regression tests at the end
of the file.

More examples: ``BIGPREP_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import bigprep
from bigprep import BigprepError
from tests.helpers import read_output, write_partitions

FLOAT, INT, STR, BOOL = "float", "int", "str", "bool"
DTYPES = {FLOAT: pl.Float64, INT: pl.Int64, STR: pl.String, BOOL: pl.Boolean}
GROUP, ORDER = "grp", "seq"  # the optional key and order columns
STATS = ("mean", "median", "mode")
NUMERIC_ONLY = ("mean", "median")
SCANS = ("ffill", "bfill")
ALIASES = {"most_frequent": "mode"}
CONSTANTS = ["0", "-2", "7", "1.5", "inf", "unknown", "yes", "true", "", "a,b"]
INT64 = (-(2**63), 2**63 - 1)


# -- the oracle -------------------------------------------------------------------------

def missing(value, kind: str) -> bool:
    return value is None or (kind == FLOAT and math.isnan(value))


def typed_constant(text: str, kind: str):
    """The constant typed to the column (README: "the value V, typed to the column");
    raises ValueError when it cannot be."""
    if kind == STR:
        return text
    if kind == BOOL:
        word = text.strip().lower()
        if word in ("true", "t", "yes", "y", "1"):
            return True
        if word in ("false", "f", "no", "n", "0"):
            return False
        raise ValueError(text)
    if kind == INT:
        if not re.fullmatch(r"[+-]?\d+", text) or not INT64[0] <= int(text) <= INT64[1]:
            raise ValueError(text)
        return int(text)
    return float(text)


def statistic(kind: str, step: str, values: list):
    """mean / median / mode of the non-missing ``values``: a Fraction for integer
    means and medians (rounded later), a float for floats, the value for modes."""
    if step == "mode":
        counts = Counter(values)  # 0.0 and -0.0 are one value, as in numpy and pandas
        top = max(counts.values())
        return min(v for v, c in counts.items() if c == top)
    if kind == INT:
        if step == "mean":
            return Fraction(sum(values), len(values))
        ordered = sorted(values)
        half = len(ordered) // 2
        return Fraction(ordered[half] + ordered[~half], 2)
    with np.errstate(all="ignore"):
        array = np.array(values, dtype=np.float64)
        if step == "median":
            return float(np.median(array))
        if not np.all(np.isfinite(array)):
            return float(np.mean(array))  # inf or nan: refused anyway
        return math.fsum(values) / len(values)  # the exact mean, compared with a tolerance


def typed_statistic(kind: str, value):
    """README: integer columns keep their type, fractional fills round half to even."""
    return round(value) if kind == INT and isinstance(value, Fraction) else value


@dataclass
class Approx:
    """A float mean: sums in another order differ by rounding only."""

    value: float
    tol: float

    def matches(self, got) -> bool:
        return isinstance(got, float) and abs(got - self.value) <= self.tol


@dataclass
class Case:
    kinds: dict  # column -> kind, in schema order
    data: dict  # column -> list of values over the concatenation
    sizes: list
    row_group_size: int | None
    chunk_rows: int
    strategy: list | None  # steps, e.g. ["ffill", "mean"] or [..., "constant:V"]
    columns: dict | None  # column -> steps
    group_by: str | None
    order_by: str | None
    add_indicator: bool = False
    separator: str = ","  # between the steps of a chain

    @property
    def rows(self) -> int:
        return sum(self.sizes)


def chain_text(steps: list, separator: str = ",") -> str:
    return separator.join(steps)


def step_kind(step: str) -> str:
    return "constant" if step.startswith("constant:") else ALIASES.get(step, step)


@dataclass
class Expected:
    """What a run must give: the output columns, each with its acceptable values
    (one list, or several where the README leaves the choice open), or an error."""

    columns: dict  # column -> list of acceptable value lists, in output order
    must: set  # a BigprepError must be raised, naming one of these
    may: set  # a BigprepError naming one of these is acceptable too


def bad_order(case: Case) -> bool:
    """A null order value, or a decrease between consecutive rows of one group."""
    if case.order_by is None:
        return False
    order = case.data[case.order_by]
    if any(v is None for v in order):
        return True
    keys = group_keys(case)
    last: dict = {}
    for key, value in zip(keys, order):
        if key in last and value < last[key]:
            return True
        last[key] = value
    return False


def group_keys(case: Case) -> list:
    """Each row's group: a null (or NaN) key is a group of its own; 0.0 is -0.0."""
    if case.group_by is None:
        return [0] * case.rows
    kind = case.kinds[case.group_by]
    return [None if missing(v, kind) else v for v in case.data[case.group_by]]


def neighbour(values: list, kind: str, keys: list, forward: bool) -> list:
    """The previous (``forward``) or next original valid value of each row's group."""
    out = [None] * len(values)
    seen: dict = {}
    rows = range(len(values)) if forward else range(len(values) - 1, -1, -1)
    for r in rows:
        out[r] = seen.get(keys[r])
        if not missing(values[r], kind):
            seen[keys[r]] = values[r]
    return out


def plan(case: Case) -> dict:
    """Column -> (steps, named in ``columns``?), in the order the plans are made."""
    named = case.columns or {}
    plans = {name: (steps, True) for name, steps in named.items()}
    if named and case.strategy is None:
        return plans  # `columns` alone: only those
    for name, kind in case.kinds.items():
        if name in named or name in (case.group_by, case.order_by):
            continue
        if case.strategy is None:
            plans[name] = (["mean"] if kind in (INT, FLOAT) else ["mode"], False)
        elif kind in (INT, FLOAT) or not any(step_kind(s) in NUMERIC_ONLY
                                             for s in case.strategy):
            plans[name] = (case.strategy, False)
        # else: the strategy cannot serve it, so it is left alone
    return plans


def oracle(case: Case) -> Expected:
    must: set = set()
    may: set = set()
    keys = group_keys(case)
    columns = {name: [values] for name, values in case.data.items()}
    indicators: dict = {}
    for name, (steps, is_named) in plan(case).items():
        kind, values = case.kinds[name], case.data[name]
        valid = [v for v in values if not missing(v, kind)]
        has_missing = len(valid) < len(values)
        # a column without missing values has nothing to fill: refusing it is fine too
        at_fault = must if is_named or has_missing else may
        fills = []  # one candidate list per step, in chain order
        for step in steps:
            what = step_kind(step)
            if what in NUMERIC_ONLY and kind not in (INT, FLOAT):
                at_fault.add(name)  # only when named: mean of a string column
            elif what == "constant":
                try:
                    fills.append([typed_constant(step[len("constant:"):], kind)] * len(values))
                except ValueError:
                    at_fault.add(name)
            elif what in SCANS:
                fills.append(neighbour(values, kind, keys, forward=what == "ffill"))
            elif not valid:
                fills.append([None] * len(values))
            else:
                value = statistic(kind, what, valid)
                if isinstance(value, float) and not math.isfinite(value):
                    at_fault.add(name)  # an infinite (or NaN) statistic is refused
                    continue
                value = typed_statistic(kind, value)
                if kind == FLOAT and what == "mean":
                    value = Approx(value, 1e-13 * math.fsum(abs(v) for v in valid))
                fills.append([value] * len(values))
        filled = [value if not missing(value, kind) else
                  next((f[r] for f in fills if f[r] is not None), None)
                  for r, value in enumerate(values)]
        has_stat = any(step_kind(s) in STATS for s in steps)
        has_constant = any(step_kind(s) == "constant" for s in steps)
        if not valid and has_stat and not has_constant:
            if is_named:
                must.add(name)  # README: "an error when named with --column"
            continue  # README: left alone under the defaults and `strategy`
        # (with a constant in the chain, the statistic fills nothing and the constant all)
        if not is_named and not has_missing:
            continue  # nothing to fill (a dataset without rows has no nulls)
        columns[name] = [filled]
        indicators[name] = [[missing(v, kind) for v in values]]
    for name, options in indicators.items():
        if name + "__missing" in case.kinds:
            if case.add_indicator:  # README: an indicator never replaces an input column
                (must if len(options) == 1 else may).add("add_indicator")
            continue
        columns[name + "__missing"] = options if case.add_indicator else [None]
    if bad_order(case):  # README: a null or decreasing order value stops the run
        must.add("order_by")
    reserved = [name for name in case.kinds if name.startswith("__bp_")]
    if reserved:  # README: bigprep's working columns; the run stops, naming the column
        must.update(reserved)
    return Expected(columns, must, may)


# -- generating cases -------------------------------------------------------------------

FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, 0.1]),
                   st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False))
INTS = st.one_of(st.integers(-3, 3), st.integers(*INT64))
STRINGS = st.one_of(st.sampled_from(["", "a", "b", "B", "é", "a,b"]), st.text(max_size=3))
VALUES = {FLOAT: FLOATS, INT: INTS, STR: STRINGS, BOOL: st.booleans()}


@st.composite
def column_values(draw, kind: str, n: int) -> list:
    holes = draw(st.sampled_from(["some", "some", "none", "all"]))
    gaps = [None, math.nan] if kind == FLOAT else [None]
    if holes == "all":
        return draw(st.lists(st.sampled_from(gaps), min_size=n, max_size=n))
    values = VALUES[kind]
    if kind == FLOAT and draw(st.integers(0, 4)) == 4:  # now and then +-inf
        values = st.one_of(values, st.sampled_from([math.inf, -math.inf]))
    if holes == "some":
        values = st.one_of(values, st.sampled_from(gaps))
    return draw(st.lists(values, min_size=n, max_size=n))


@st.composite
def order_values(draw, n: int) -> list:
    """Non-decreasing integers; now and then a null or a decrease."""
    steps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    values = [int(v) for v in np.cumsum(steps) + draw(st.integers(-5, 5))]
    if n and draw(st.integers(0, 5)) == 5:
        r = draw(st.integers(0, n - 1))
        values[r] = draw(st.sampled_from([None, values[r] - 10]))
    return values


# column names a user may well have ("x__missing" is where x's indicator would go),
# and names of bigprep's working columns (reserved: refused)
ODD_NAMES = ["a b", "é", "1x", "x.y", "Temp", "col-1", "__bp_x", "__bp_g", "__bp_next_0"]
FITTING = {  # constants that can be typed to each kind (others are tried too)
    INT: ["0", "-2", "7"], FLOAT: ["0", "1.5", "-2", "inf"], STR: ["unknown", "", "a,b", "0"],
    BOOL: ["yes", "true", "0"]}


@st.composite
def chains(draw, kind: str | None = None) -> list:
    """A strategy chain; for a column of ``kind``, mostly one that can serve it."""
    fitting = kind is not None and draw(st.integers(0, 4)) > 0
    names = ["mean", "median", "mode", "most_frequent", "ffill", "bfill"]
    if fitting and kind in (STR, BOOL):
        names = names[2:]
    steps = draw(st.lists(st.sampled_from(names), min_size=0, max_size=3))
    if not steps or draw(st.integers(0, 3)) == 0:
        pool = FITTING[kind] if fitting else CONSTANTS
        steps.append("constant:" + draw(st.one_of(st.just("0"), st.sampled_from(pool))))
    return steps


@st.composite
def cases(draw) -> Case:
    sizes = draw(st.lists(st.integers(0, 30), min_size=1, max_size=5))
    n = sum(sizes)
    kinds: dict = {}
    for i, kind in enumerate(draw(st.lists(st.sampled_from([FLOAT, INT, STR, BOOL]),
                                           min_size=1, max_size=4))):
        name, odd = f"{kind[0]}{i}", draw(st.integers(0, 7))
        if odd == 6:
            name = draw(st.sampled_from(ODD_NAMES))
        elif odd == 7 and kinds:
            name = draw(st.sampled_from(list(kinds))) + "__missing"
        kinds[name if name not in kinds else f"{kind[0]}{i}"] = kind
    data = {name: draw(column_values(kind, n)) for name, kind in kinds.items()}
    group_by = order_by = None
    if draw(st.booleans()):  # mostly the key column, now and then a data column
        group_by = draw(st.sampled_from([GROUP, GROUP, *kinds]))
        if group_by == GROUP:
            kinds[GROUP] = STR
            data[GROUP] = draw(st.lists(st.sampled_from(["x", "y", "z", "", None]),
                                        min_size=n, max_size=n))
    if draw(st.booleans()):
        order_by, kinds[ORDER] = ORDER, INT
        data[ORDER] = draw(order_values(n))
    how = draw(st.sampled_from(["strategy", "columns", "both", "defaults"]))
    strategy = draw(chains()) if how in ("strategy", "both") else None
    columns = None
    if how in ("columns", "both"):
        named = draw(st.lists(st.sampled_from(list(kinds)), min_size=1, max_size=len(kinds),
                              unique=True))
        columns = {name: draw(chains(kinds[name])) for name in named}
    return Case(kinds, data, sizes, draw(st.sampled_from([None, 1, 2, 7])),
                draw(st.integers(1, 16)), strategy, columns, group_by, order_by,
                draw(st.booleans()), draw(st.sampled_from([",", ", ", " , "])))


# -- running bigprep and comparing -----------------------------------------------------

def names_one_of(message: str, names: set) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", message) for n in names)


def same(got, want) -> bool:
    if isinstance(want, Approx):
        return want.matches(got)
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return type(got) is type(want) and got == want


def run_bigprep(case: Case, folder: str):
    """Write the partitions, impute them; the outputs in input order, or the error."""
    frame = pl.DataFrame(case.data, schema={n: DTYPES[k] for n, k in case.kinds.items()})
    paths = write_partitions(frame, os.path.join(folder, "in"), case.sizes,
                             row_group_size=case.row_group_size)
    out = os.path.join(folder, "out")
    imputer = bigprep.Imputer(
        strategy=None if case.strategy is None else chain_text(case.strategy, case.separator),
        columns=None if case.columns is None else {
            c: chain_text(s, case.separator) for c, s in case.columns.items()},
        group_by=case.group_by, order_by=case.order_by, add_indicator=case.add_indicator,
        chunk_rows=case.chunk_rows)
    try:
        imputer.fit_transform(paths, out=out)
    except BigprepError as err:
        return frame, None, err
    return frame, read_output(out, paths), None


def check(case: Case, folder: str) -> None:
    note(f"case: {case}")
    expected = oracle(case)
    note(f"errors: must name one of {expected.must} (or may: {expected.may})")
    frame, out, err = run_bigprep(case, folder)
    if err is not None:
        allowed = expected.must | expected.may
        assert allowed, f"unexpected BigprepError: {err}"
        assert names_one_of(str(err), allowed), f"{err!s} names none of {allowed}"
        return
    assert not expected.must, f"expected a BigprepError naming one of {expected.must}"
    assert out.height == case.rows
    # the input columns with their types, then the indicators in plan order
    assert out.columns[:frame.width] == frame.columns
    assert all(out.schema[n] == dtype for n, dtype in frame.schema.items())
    extra = out.columns[frame.width:]
    planned = [n for n in expected.columns if n not in case.kinds]
    assert extra == [n for n in planned if n in extra], f"output columns {out.columns}"
    assert all(out.schema[n] == pl.Boolean for n in extra)
    for name, options in expected.columns.items():
        if name not in out.columns:
            assert None in options, f"missing output column {name!r}"
            continue
        got = out[name].to_list()
        mismatches = []
        for want in (o for o in options if o is not None):
            mismatches.append([(r, got[r], want[r]) for r in range(case.rows)
                               if not same(got[r], want[r])])
            if not mismatches[-1]:
                break
        else:
            raise AssertionError(f"column {name!r}: (row, bigprep, oracle) "
                                 f"{[m[:5] for m in mismatches]}")


@settings(max_examples=int(os.environ.get("BIGPREP_FUZZ_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_impute_equals_in_memory_oracle_or_fails_cleanly(case):
    with tempfile.TemporaryDirectory() as folder:
        check(case, folder)


# -- discrepancies the property found, reduced (regression tests) ----------------------

def _impute_one(folder, frame: pl.DataFrame, **params) -> pl.DataFrame:
    path = os.path.join(folder, "part-0.parquet")
    frame.write_parquet(path)
    bigprep.Imputer(chunk_rows=2, **params).fit_transform([path], out=os.path.join(folder, "out"))
    return pl.read_parquet(os.path.join(folder, "out", "part-0.parquet"))


@pytest.mark.parametrize("seq", [[3, 2, 1], [1, None, 3]])
def test_order_by_is_checked_without_fills_from_neighbours(tmp_path, seq):
    """README: a null or decreasing order_by stops the run, whatever the strategy."""
    frame = pl.DataFrame({"x": [1.0, None, 3.0], "seq": seq})
    with pytest.raises(BigprepError, match="order_by"):
        _impute_one(str(tmp_path), frame, strategy="mean", order_by="seq")
    assert not os.path.exists(tmp_path / "out")


def test_order_by_is_checked_when_applying_statistics(tmp_path):
    good = pl.DataFrame({"x": [1.0, None, 3.0], "seq": [1, 2, 3]})
    good.write_parquet(tmp_path / "good.parquet")
    state = str(tmp_path / "state")
    bigprep.Imputer(strategy="mean", order_by="seq").fit([str(tmp_path / "good.parquet")],
                                                         save=state)
    pl.DataFrame({"x": [None, 2.0], "seq": [5, 4]}).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(BigprepError, match="order_by"):
        bigprep.Imputer.load(state).transform([str(tmp_path / "bad.parquet")],
                                              out=str(tmp_path / "out"))


def test_no_rows_means_no_nulls_to_impute(tmp_path):
    frame = pl.DataFrame(schema={"x": pl.Float64, "n": pl.Int64})
    out = _impute_one(str(tmp_path), frame, strategy="ffill", add_indicator=True)
    assert out.columns == ["x", "n"]  # as with pl.DataFrame({"x": [1.0], "n": [1]})


@pytest.mark.parametrize("name, imputed", [
    ("__bp_x", False),       # was: an untouched column came out as row positions 0, 1, 2
    ("__bp_next_0", False),  # was: an untouched column came out as x's bfill
    ("__bp_g", True),        # was: the imputed column itself came out as 0.0, 0.0, 0.0
    ("__bp_before", False),  # was: an internal polars error
])
def test_columns_named_like_bigprep_working_columns_are_refused(tmp_path, name, imputed):
    target = name if imputed else "x"
    frame = pl.DataFrame({target: [1.0, None, 3.0]})
    if not imputed:
        frame = frame.with_columns(pl.Series(name, ["p", "q", "r"]))
    with pytest.raises(BigprepError) as err:
        _impute_one(str(tmp_path), frame, columns={target: "bfill"})
    assert set(re.findall(r"__bp_\w+", str(err.value))) == {name}, str(err.value)
    assert "Rename" in str(err.value)


@pytest.mark.parametrize("params", [{"columns": {"x": "mean,constant:0"}},
                                    {"strategy": "median,constant:0"}])
def test_a_statistic_without_values_passes_to_the_chains_constant(tmp_path, params):
    frame = pl.DataFrame({"x": [None, None, None], "y": [1.0, None, 3.0]},
                         schema={"x": pl.Float64, "y": pl.Float64})
    out = _impute_one(str(tmp_path), frame, **params)
    assert out["x"].to_list() == [0.0, 0.0, 0.0]
    assert out["y"].to_list() == [1.0, None if "columns" in params else 2.0, 3.0]
