"""Oracle tests: bigprep out of core equals scikit-learn / pandas in memory.

Data is split into many small partitions with small row groups and chunks, so
every statistic crosses file, row-group and chunk boundaries.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.impute import SimpleImputer

from tests.helpers import impute, read_output, with_holes, write_partitions

SIZES = [0, 1, 37, 120, 1, 0, 200, 41, 100]  # empty and single-row partitions too


def run(tmp_path, frame, sizes=SIZES, chunk_rows=16, **options):
    paths = write_partitions(frame, tmp_path / "in", sizes, row_group_size=25)
    report = impute(paths, str(tmp_path / "out"), chunk_rows=chunk_rows, **options)
    return read_output(tmp_path / "out", paths), report


@pytest.fixture
def frame(rng):
    n = sum(SIZES)
    f = pl.DataFrame({
        "g": rng.choice(["a", "b", "c"], n),
        "t": np.cumsum(rng.integers(1, 5, n)).astype(np.float64),
        "x": with_holes(rng, rng.normal(10, 3, n)),
        "k": with_holes(rng, rng.integers(0, 7, n)),
        "s": with_holes(rng, rng.choice(["u", "v", "w"], n)),
        "b": with_holes(rng, rng.random(n) < 0.4),
    })
    # nulls at the very first and last rows, and a long run across files
    return f.with_columns(pl.when(pl.int_range(pl.len()).is_in([0, 1, n - 1])
                                  | pl.int_range(pl.len()).is_between(150, 170))
                          .then(None).otherwise(pl.col("x")).alias("x"))


def sk(strategy, values, **kw):
    column = np.asarray(values, dtype=object if values.dtype == object else float)
    return SimpleImputer(strategy=strategy, **kw).fit(column.reshape(-1, 1)).statistics_[0]


@pytest.mark.parametrize("strategy", ["mean", "median"])
def test_numeric_statistics_match_simple_imputer(tmp_path, frame, strategy):
    out, report = run(tmp_path, frame, strategy=strategy)
    expected = sk(strategy, frame["x"].to_pandas())
    assert report.state.fill_value("x", strategy) == pytest.approx(expected, rel=1e-12)
    filled = frame["x"].to_pandas().fillna(expected)
    np.testing.assert_allclose(out["x"].to_numpy(), filled.to_numpy(), rtol=1e-12)
    # integers keep their type: the statistic is rounded half to even
    k_stat = sk(strategy, frame["k"].to_pandas())
    assert out["k"].dtype == pl.Int64
    assert out["k"].to_list() == frame["k"].fill_null(round(k_stat)).to_list()


def test_mode_matches_simple_imputer_with_ties_to_smallest(tmp_path):
    f = pl.DataFrame({"s": ["b", "a", None, "b", "a", None, "c"],
                      "n": [3.0, 1.0, None, 1.0, 3.0, 2.0, None],
                      "b": [True, False, None, True, False, None, None]})
    out, report = run(tmp_path, f, sizes=[2, 0, 1, 4], chunk_rows=2, strategy="mode")
    for col in ("s", "n"):
        pd_col = f[col].to_pandas()
        expected = sk("most_frequent", pd_col.astype(object).where(pd_col.notna(), np.nan)
                      if col == "s" else pd_col, missing_values=np.nan)
        assert report.state.fill_value(col, "mode") == expected
    assert out["s"].to_list() == ["b", "a", "a", "b", "a", "a", "c"]
    assert out["b"].to_list() == [True, False, False, True, False, False, False]


def test_median_even_count_is_mean_of_middle_values(tmp_path):
    f = pl.DataFrame({"x": [1.0, None, 1.0, 2.0, 2.0, None]})
    out, report = run(tmp_path, f, sizes=[1, 2, 3], chunk_rows=1, strategy="median")
    assert report.state.fill_value("x", "median") == 1.5 == np.median([1, 1, 2, 2])
    assert out["x"].to_list() == [1.0, 1.5, 1.0, 2.0, 2.0, 1.5]


def test_constant_is_typed_to_each_column(tmp_path, frame):
    out, _ = run(tmp_path, frame, columns={"x": "constant:-1.5", "k": "constant:9",
                                           "s": "constant:unknown, really", "b": "constant:yes"})
    assert out["x"].to_list() == frame["x"].fill_null(-1.5).to_list()
    assert out["k"].to_list() == frame["k"].fill_null(9).to_list()
    assert out["s"].to_list() == frame["s"].fill_null("unknown, really").to_list()
    assert out["b"].to_list() == frame["b"].fill_null(True).to_list()


@pytest.mark.parametrize("method", ["ffill", "bfill"])
def test_fills_from_neighbours_match_pandas_across_files(tmp_path, frame, method):
    out, _ = run(tmp_path, frame, strategy=method)
    pdf = frame.to_pandas()
    for col in ("x", "k", "s", "b"):
        expected = getattr(pdf[col], method)()
        assert out[col].to_list() == [None if pd.isna(v) else v for v in expected], col


@pytest.mark.parametrize("method", ["ffill", "bfill"])
def test_grouped_fills_match_pandas_groupby(tmp_path, frame, method):
    out, _ = run(tmp_path, frame, columns={"x": method, "s": method}, group_by="g")
    pdf = frame.to_pandas()
    for col in ("x", "s"):
        expected = getattr(pdf.groupby("g")[col], method)()
        assert out[col].to_list() == [None if pd.isna(v) else v for v in expected]


def _interp(series: pd.Series, index=None) -> pd.Series:
    if index is None:
        return series.interpolate(method="linear", limit_area="inside")
    return pd.Series(series.to_numpy(), index=index).interpolate(
        method="index", limit_area="inside").reset_index(drop=True)


def test_interpolate_by_position_matches_pandas(tmp_path, frame):
    out, _ = run(tmp_path, frame, columns={"x": "interpolate"})
    expected = _interp(frame["x"].to_pandas())
    np.testing.assert_allclose(out["x"].to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert out["x"][0] is None and out["x"][-1] is None  # edges stay null


def test_interpolate_by_order_column_and_group_matches_pandas(tmp_path, frame):
    out, _ = run(tmp_path, frame, columns={"x": "interpolate"}, group_by="g", order_by="t")
    pdf = frame.to_pandas()
    expected = pdf.groupby("g", group_keys=False).apply(
        lambda d: pd.Series(_interp(d["x"], pd.Index(d["t"])).to_numpy(), index=d.index))
    np.testing.assert_allclose(out["x"].to_numpy(), expected.sort_index().to_numpy(), rtol=1e-12)


def test_interpolate_by_timestamp_rounds_integers_half_to_even(tmp_path):
    ts = [dt.datetime(2024, 1, 1) + dt.timedelta(minutes=m) for m in (0, 1, 3, 4, 8, 9)]
    f = pl.DataFrame({"ts": ts, "k": [0, None, None, 3, None, 8]})
    out, _ = run(tmp_path, f, sizes=[2, 2, 2], chunk_rows=1,
                 columns={"k": "interpolate"}, order_by="ts")
    expected = _interp(f["k"].to_pandas().astype(float), pd.DatetimeIndex(ts))
    assert out["k"].dtype == pl.Int64
    assert out["k"].to_list() == [round(v) for v in expected]
    # 1.5 and 2.5 both round to 2 (half to even)
    g = pl.DataFrame({"ts": ts, "k": [0, None, 3, 1, None, 4]})
    out, _ = run(tmp_path / "b", g, sizes=[3, 3], chunk_rows=2, columns={"k": "interpolate"})
    assert out["k"].to_list() == [0, 2, 3, 1, 2, 4]


def test_chain_fills_what_is_still_null_in_order(tmp_path, frame):
    out, _ = run(tmp_path, frame, columns={"x": "interpolate,ffill,median"}, group_by="g")
    pdf = frame.to_pandas()
    median = sk("median", pdf["x"])
    expected = pdf.groupby("g")["x"].transform(
        lambda s: s.interpolate(limit_area="inside").ffill()).fillna(median)
    np.testing.assert_allclose(out["x"].to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_all_null_partition_does_not_break_the_chain(tmp_path):
    f = pl.DataFrame({"x": [1.0, None, None, None, None, None, 7.0, None]})
    out, _ = run(tmp_path, f, sizes=[2, 3, 1, 2], chunk_rows=1,
                 columns={"x": "interpolate"})
    assert out["x"].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, None]
    out, _ = run(tmp_path / "b", f, sizes=[2, 3, 1, 2], chunk_rows=1, columns={"x": "bfill"})
    assert out["x"].to_list() == [1.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, None]


def test_indicator_and_schema_row_order_preserved(tmp_path, frame):
    out, _ = run(tmp_path, frame, columns={"x": "mean"}, add_indicator=True)
    assert out.columns == frame.columns + ["x__missing"]
    assert out["x__missing"].to_list() == frame["x"].is_null().to_list()
    assert out.drop("x", "x__missing").equals(frame.drop("x"))
    assert out.schema["x"] == frame.schema["x"]


def test_nan_counts_as_missing_like_pandas(tmp_path):
    f = pl.DataFrame({"x": [1.0, float("nan"), 3.0, None]})
    out, report = run(tmp_path, f, sizes=[2, 2], strategy="mean")
    assert report.state.fill_value("x", "mean") == 2.0
    assert out["x"].to_list() == [1.0, 2.0, 3.0, 2.0]
