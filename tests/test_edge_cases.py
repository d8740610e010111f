"""Regression tests for edge cases an outside review found (each failed before its fix)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from sklearn.impute import SimpleImputer
from sklearn.metrics import r2_score, roc_auc_score

from bigprep import TfidfVectorizer
from bigprep.cli import main
from bigprep.ops.tfidf.vectors import to_csr
from bigprep.state.metrics import ClassificationMetrics, Predictions, RegressionMetrics
from tests.helpers import impute, read_output, write_partitions


def run(tmp_path, frame, sizes, **options):
    paths = write_partitions(frame, tmp_path / "in", sizes, row_group_size=2)
    impute(paths, str(tmp_path / "out"), chunk_rows=2, **options)
    return read_output(tmp_path / "out", paths)


@pytest.mark.parametrize("dtype", [pl.UInt8, pl.UInt32, pl.UInt64, pl.Int8, pl.Int16,
                                   pl.Float32])
@pytest.mark.parametrize("strategy", ["mean", "median"])
def test_statistics_on_every_numeric_type_match_simple_imputer(tmp_path, dtype, strategy):
    values = [1, 2, None, 3, 10, None, 7, 7]
    out = run(tmp_path, pl.DataFrame({"x": pl.Series(values, dtype=dtype)}), [3, 5],
              strategy=strategy)
    stat = SimpleImputer(strategy=strategy).fit(
        np.array([np.nan if v is None else v for v in values]).reshape(-1, 1)).statistics_[0]
    fill = round(stat) if dtype.is_integer() else np.float32(stat)
    assert out["x"].dtype == dtype
    assert out["x"].to_list() == pytest.approx([fill if v is None else v for v in values])


def test_integer_fills_are_exact_beyond_float_precision(tmp_path):
    big = 2**53 + 1
    out = run(tmp_path, pl.DataFrame({"m": [big, big, None], "u": pl.Series(
        [2**64 - 1, 2**64 - 1, None], dtype=pl.UInt64)}), [2, 1], strategy="mean")
    assert out["m"].to_list() == [big, big, big]
    assert out["u"].to_list() == [2**64 - 1] * 3
    out = run(tmp_path / "b", pl.DataFrame({"m": [big, big + 2, None]}), [3], strategy="median")
    assert out["m"][2] == big + 1


def test_float_group_keys_with_nan_match_pandas_dropna_false(tmp_path):
    frame = pl.DataFrame({"g": [float("nan"), 1.0, float("nan"), 1.0, float("nan")],
                          "x": [5.0, 1.0, None, None, None]})
    out = run(tmp_path, frame, [2, 3], columns={"x": "ffill"}, group_by="g")
    assert out["x"].to_list() == [5.0, 1.0, 5.0, 1.0, 5.0]
    assert out["g"].is_nan().to_list() == frame["g"].is_nan().to_list()  # keys untouched


def test_mode_ties_on_categories_go_to_the_smallest_text(tmp_path):
    frame = pl.DataFrame({"c": pl.Series(["z", "y", None, "z", "y"],
                                         dtype=pl.Enum(["z", "y"]))})
    assert run(tmp_path, frame, [5], strategy="mode")["c"][2] == "y"


def test_only_empty_files_with_fills_from_neighbours(tmp_path):
    frame = pl.DataFrame({"x": pl.Series([], dtype=pl.Float64)})
    out = run(tmp_path, frame, [0, 0], columns={"x": "interpolate,ffill"})
    assert out.height == 0


def test_constant_only_columns_count_their_nulls(tmp_path):
    paths = write_partitions(pl.DataFrame({"x": [1.0, None, None]}), tmp_path / "in", [3])
    report = impute(paths, str(tmp_path / "out"), columns={"x": "constant:0"})
    assert report.filled("x") == 2


def test_update_covers_columns_that_had_no_nulls_before(tmp_path):
    a = write_partitions(pl.DataFrame({"k": [1, 2, 3]}), tmp_path / "a", [3])
    b = write_partitions(pl.DataFrame({"k": [None, 5, None]}), tmp_path / "b", [3])
    state = str(tmp_path / "s.json")
    impute(a, str(tmp_path / "oa"), state_path=state)
    impute(b, str(tmp_path / "ob"), state_path=state, update=True)
    assert read_output(tmp_path / "ob", b)["k"].to_list() == [3, 5, 3]  # mean 2.75 -> 3


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_merging_the_same_partitions_twice_is_refused(tmp_path):
    a = write_partitions(pl.DataFrame({"x": [1.0, None]}), tmp_path / "a", [2])
    b = write_partitions(pl.DataFrame({"x": [3.0, None]}), tmp_path / "b", [2])
    state = tmp_path / "s.json"
    assert invoke("impute", *a, "--state", state, "-q").exit_code == 0
    assert invoke("impute", *b, "--state", state, "--update", "-q").exit_code == 0
    again = invoke("impute", *b, "--state", state, "--update", "-q")
    assert again.exit_code == 1 and "already merged" in again.stderr
    assert json.loads(state.read_text())["payload"]["rows"] == 4


def test_state_or_out_that_would_overwrite_inputs_is_refused(tmp_path):
    paths = write_partitions(pl.DataFrame({"x": [1.0, None]}), tmp_path / "in", [2])
    before = hashlib.sha256(Path(paths[0]).read_bytes()).hexdigest()
    os.symlink(tmp_path / "in", tmp_path / "alias")
    result = invoke("impute", tmp_path / "in", "--out", tmp_path / "alias", "-q")
    assert result.exit_code == 1 and "holds input file" in result.stderr
    result = invoke("impute", *paths, "--state", paths[0], "-q")
    assert result.exit_code == 1 and "is input file" in result.stderr
    result = invoke("impute", *paths, "--state", tmp_path, "-q")
    assert result.exit_code == 1 and "is a folder" in result.stderr
    assert hashlib.sha256(Path(paths[0]).read_bytes()).hexdigest() == before


@pytest.mark.parametrize("command", [["impute"], ["tfidf", "fit", "--text-column", "t"]])
def test_a_state_inside_the_output_folder_is_refused_before_anything_is_written(
        tmp_path, command):
    """The output folder is replaced whole (--overwrite), so a state saved in it would go
    with it; through a link too."""
    paths = write_partitions(pl.DataFrame({"x": [1.0, None], "t": ["a b", "b c"]}),
                             tmp_path / "in", [2])
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "out", tmp_path / "link")
    for state in (tmp_path / "out" / "s.json", tmp_path / "link" / "s.json"):
        result = invoke(*command, *paths, "--out", tmp_path / "out",
                        "--state", state, "--overwrite", "-q")
        assert result.exit_code == 1 and "inside the output folder" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_nested_columns_are_not_called_clean(tmp_path):
    frame = pl.DataFrame({"l": [[1], None], "x": [1.0, 2.0]})
    paths = write_partitions(frame, tmp_path / "in", [2])
    result = invoke("impute", *paths, "--out", tmp_path / "o", "-c", "l=constant:0", "-q")
    assert result.exit_code == 1  # a list column gets a clear error, not silence
    assert "Traceback" not in result.output


def test_one_term_vocabulary_and_a_bad_token_pattern(tmp_path):
    paths = write_partitions(pl.DataFrame({"body": ["hello hello", "hello", None, "a b"]}),
                             tmp_path / "in", [4])
    vectorizer = TfidfVectorizer().fit(paths, text_column="body")
    assert vectorizer.state_.n_features == 1
    vectorizer.transform(paths, out=str(tmp_path / "v"))
    assert to_csr(read_output(tmp_path / "v", paths), 1).shape == (4, 1)
    result = invoke("tfidf", "fit", *paths, "--text-column", "body", "--state",
                    tmp_path / "s.json", "--token-pattern", "(")
    assert result.exit_code == 2 and "not a regular expression" in result.stderr


def test_r2_with_a_large_offset_and_auc_of_saturated_scores():
    rng = np.random.default_rng(0)
    y = 1e9 + rng.normal(size=5000)
    pred = y + rng.normal(scale=0.5, size=5000)
    metrics = RegressionMetrics()
    for part in np.array_split(np.arange(5000), 7):
        piece = RegressionMetrics()
        piece.update(Predictions(y[part], pred[part]))
        metrics = metrics.merge(piece)
    assert metrics.result()["r2"] == pytest.approx(r2_score(y, pred), abs=1e-9)
    truth = rng.integers(0, 2, 5000)
    log_odds = truth * 3 + rng.normal(size=5000) + 30  # probabilities all near 1
    auc = ClassificationMetrics([0, 1])
    auc.update(Predictions(truth, truth, score=log_odds))
    assert auc.result()["roc_auc"] == pytest.approx(roc_auc_score(truth, log_odds), abs=1e-3)


def test_infinite_values_are_refused_not_filled_with_nan(tmp_path):
    paths = write_partitions(pl.DataFrame({"x": [1.0, float("inf"), None, float("-inf")]}),
                             tmp_path / "in", [4])
    result = invoke("impute", *paths, "--out", tmp_path / "o", "-c", "x=mean")
    assert result.exit_code == 1 and "'x'" in result.stderr and "infinite" in result.stderr
    assert not (tmp_path / "o").exists()


def test_an_indicator_never_overwrites_an_input_column(tmp_path):
    frame = pl.DataFrame({"x": [1.0, None], "x__missing": ["keep", "me"]})
    paths = write_partitions(frame, tmp_path / "in", [2])
    result = invoke("impute", *paths, "--out", tmp_path / "o", "--add-indicator")
    assert result.exit_code == 1 and "'x__missing'" in result.stderr
    assert "--add-indicator" in result.stderr and not (tmp_path / "o").exists()


def test_training_without_validation_keeps_every_epoch(tmp_path):
    frame = pl.DataFrame({"x": np.linspace(-1, 1, 400), "y": [0, 1] * 200})
    paths = write_partitions(frame, tmp_path / "in", [200, 200])
    result = invoke("train", *paths, "--target", "y", "--out", tmp_path / "m", "--epochs", "3",
                    "--validation", "0", "-q")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "m" / "model.json").read_text())
    history = saved["payload"]["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert all(h["validation_loss"] is None for h in history)  # valid JSON, no NaN
    assert saved["updates"] == 3


def test_out_inside_an_input_folder_is_refused(tmp_path):
    paths = write_partitions(pl.DataFrame({"x": [1.0, None]}), tmp_path / "data" / "day",
                             [2])
    result = invoke("impute", tmp_path / "data", "--out", tmp_path / "data" / "clean", "-q")
    assert result.exit_code == 1 and "inside the input folder" in result.stderr
    assert "--out" in result.stderr and not (tmp_path / "data" / "clean").exists()
    # files named one by one are fine beside their outputs
    assert invoke("impute", *paths, "--out", tmp_path / "data" / "day2", "-q").exit_code == 0


def test_small_things_are_one_clear_message(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "dup").mkdir()
    pq.write_table(pa.table([pa.array([1.0, None]), pa.array([2, 3])], names=["x", "x"]),
                   tmp_path / "dup" / "a.parquet")
    ok = write_partitions(pl.DataFrame({"x": [1.0, None]}), tmp_path / "ok", [2])
    (tmp_path / "afile").write_text("x")
    docs = pl.DataFrame({"id": [1, 2], "keywords": ["k", "l"], "body": ["red wine", "wine"]})
    text = write_partitions(docs, tmp_path / "t", [2])
    assert invoke("tfidf", "fit", *text, "--text-column", "body", "--state",
                  tmp_path / "s.json", "-q").exit_code == 0
    cases = [
        (["impute", tmp_path / "dup", "--out", tmp_path / "o"], ["a.parquet", "'x'"]),
        (["impute", *ok, "--out", tmp_path / "afile"], ["--out", "is a file"]),
        (["impute", *ok, "--out", tmp_path / "o", "-s", "medain"], ["'median'"]),
        (["tfidf", "transform", *text, "--state", tmp_path / "s.json", "--out",
          tmp_path / "v", "--keep", "keywords", "--keywords", "2"], ["--keep", "keywords"]),
    ]
    for args, words in cases:
        result = invoke(*args)
        usage = "medain" in args  # a malformed option value is a usage error
        assert result.exit_code == (2 if usage else 1) and "Traceback" not in result.output, args
        assert all(w in result.stderr for w in words), (args, result.stderr)
    monkeypatch.setenv("BIGPREP_STORAGE_OPTIONS", "[1]")
    result = invoke("impute", *ok, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "not an object" in result.stderr


def test_dictionary_encoded_text_is_text(tmp_path):
    docs = ["red wine", "white wine", "red apple"]
    plain = write_partitions(pl.DataFrame({"body": docs}), tmp_path / "p", [3])
    cat = write_partitions(pl.DataFrame({"body": pl.Series(docs, dtype=pl.Categorical)}),
                           tmp_path / "c", [3])
    a = TfidfVectorizer().fit(plain, text_column="body")
    b = TfidfVectorizer().fit(cat, text_column="body")
    assert a.vocabulary_ == b.vocabulary_ and len(a.vocabulary_) == 4


def test_nested_columns_are_left_alone_by_a_strategy_and_refused_by_name(tmp_path):
    """A statistic of lists is not a fill (its mode was saved as a scalar before)."""
    import bigprep

    path = tmp_path / "a.parquet"
    pl.DataFrame({"a": [1.0, None, 3.0], "k": [["x"], None, []]}).write_parquet(path)
    imputer = bigprep.Imputer(strategy="mode")
    imputer.fit_transform(str(path), out=str(tmp_path / "out"), save=str(tmp_path / "s.json"))
    out = pl.read_parquet(tmp_path / "out" / "a.parquet")
    assert out["a"].to_list() == [1.0, 1.0, 3.0] and out["k"].null_count() == 1
    with pytest.raises(bigprep.BigprepError, match="k=mode: 'k' is List"):
        bigprep.Imputer(columns={"k": "mode"}).fit(str(path))
