"""partial_fit models out of core reach in-memory quality; clear errors; safe loading."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification, make_moons
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, log_loss, r2_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

import bigprep
from bigprep.cli import main
from bigprep.models.store import load_model
from tests.helpers import read_output, write_partitions


def split_time_ordered(tmp_path, frame: pl.DataFrame, order_by: str, parts: int = 8):
    """Train/test halves; the train half sorted by a column (time order), in partitions."""
    train_df, test_df = frame[::2].sort(order_by), frame[1::2]
    sizes = [len(a) for a in np.array_split(np.arange(train_df.height), parts)]
    return (write_partitions(train_df, tmp_path / "train", sizes),
            write_partitions(test_df, tmp_path / "test", [test_df.height]), train_df, test_df)


def drifting_classification():
    X, y = make_classification(n_samples=40000, n_features=20, n_informative=8, flip_y=0.1,
                               class_sep=0.6, random_state=0)
    X[:, 3] = X[:, 3] * 100 + 500  # unscaled
    return pl.DataFrame({f"num_{i}": X[:, i] for i in range(20)}).with_columns(
        pl.Series("delayed", y),
        pl.Series("carrier", np.random.default_rng(0).choice(["AA", "BB", "CC"], len(y))))


def in_memory_auc(train_df, test_df, features, target):
    scaler = StandardScaler().fit(train_df.select(features).to_numpy())
    model = LogisticRegression(max_iter=2000).fit(
        scaler.transform(train_df.select(features).to_numpy()), train_df[target].to_numpy())
    return roc_auc_score(test_df[target].to_numpy(), model.predict_proba(
        scaler.transform(test_df.select(features).to_numpy()))[:, 1])


@pytest.mark.parametrize("dataset", ["drifting", "breast_cancer"])
def test_logistic_reaches_in_memory_auc_on_time_ordered_partitions(tmp_path, dataset):
    if dataset == "drifting":
        frame, target, order_by = drifting_classification(), "delayed", "num_0"
    else:
        data = load_breast_cancer(as_frame=True)
        frame = pl.from_pandas(data.frame).rename(lambda c: c.replace(" ", "_"))
        target, order_by = "target", "mean_radius"
    tr, te, train_df, test_df = split_time_ordered(tmp_path, frame, order_by)
    features = [c for c in frame.columns if c not in (target, "carrier")]
    model = bigprep.SGDModel(target=target, features=features, epochs=5, chunk_rows=2048).fit(
        tr, checkpoint=str(tmp_path / "model"))
    assert len(model.history_) <= 5
    metrics = bigprep.SGDModel.load(str(tmp_path / "model")).score(te)
    assert metrics["roc_auc"] >= in_memory_auc(train_df, test_df, features, target) - 0.01


def test_linear_regression_reaches_ridge_r2_without_diverging(tmp_path):
    data = load_diabetes(as_frame=True)
    frame = pl.from_pandas(data.frame).with_columns(pl.col("target") * 1000 + 50_000)
    tr, te, train_df, test_df = split_time_ordered(tmp_path, frame, "bmi", parts=4)
    features = [c for c in frame.columns if c != "target"]
    bigprep.SGDModel(target="target", features=features, model="linear", epochs=5,
                     validation=0.0, chunk_rows=64).fit(tr, checkpoint=str(tmp_path / "m"))
    got = bigprep.SGDModel.load(str(tmp_path / "m")).score(te)["r2"]
    ridge = Ridge(alpha=1.0).fit(train_df.select(features).to_numpy(), train_df["target"])
    expected = r2_score(test_df["target"], ridge.predict(test_df.select(features).to_numpy()))
    assert got >= expected - 0.01


def test_evaluate_equals_scikit_learn_metrics_on_the_predictions(tmp_path):
    tr, te, _, test_df = split_time_ordered(tmp_path, drifting_classification(), "num_0")
    bigprep.SGDModel(target="delayed", categorical=["carrier"], epochs=2,
                     chunk_rows=4096).fit(tr, checkpoint=str(tmp_path / "m"))
    bigprep.SGDModel.load(str(tmp_path / "m")).predict(te, out=str(tmp_path / "p"), proba=True)
    out = read_output(tmp_path / "p", te)
    y = test_df["delayed"].to_numpy()
    metrics = bigprep.SGDModel.load(str(tmp_path / "m"), chunk_rows=1000).score(te)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, out["prediction"]), abs=1e-12)
    assert metrics["f1"] == pytest.approx(f1_score(y, out["prediction"]), abs=1e-12)
    proba = out.select("proba_0", "proba_1").to_numpy()
    assert metrics["log_loss"] == pytest.approx(log_loss(y, proba), rel=1e-9)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]), abs=2e-4)


@pytest.mark.parametrize("model", ["svm", "modified-huber", "perceptron", "passive-aggressive",
                                   "bernoulli-nb"])
def test_other_linear_classifiers_learn(tmp_path, model):
    tr, te, _, _ = split_time_ordered(tmp_path, drifting_classification(), "num_0")
    bigprep.SGDModel(target="delayed", categorical=["carrier"], model=model, epochs=3,
                     chunk_rows=4096).fit(tr, checkpoint=str(tmp_path / "m"))
    assert bigprep.SGDModel.load(str(tmp_path / "m")).score(te)["accuracy"] > 0.6  # chance: 0.5


def test_rbf_kernel_beats_linear_on_a_nonlinear_problem(tmp_path):
    X, y = make_moons(n_samples=6000, noise=0.2, random_state=0)
    frame = pl.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y})
    tr, te, _, _ = split_time_ordered(tmp_path, frame, "a", parts=4)
    scores = {}
    for model in ("svm", "rbf-svm"):
        bigprep.SGDModel(target="y", model=model, epochs=5, gamma=2.0, kernel_components=300,
                         chunk_rows=500).fit(tr, checkpoint=str(tmp_path / model))
        scores[model] = bigprep.SGDModel.load(str(tmp_path / model)).score(te)["accuracy"]
    assert scores["rbf-svm"] > 0.93 > scores["svm"]


def test_multinomial_nb_and_kmeans(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.poisson(lam=np.where(rng.random((4000, 1)) < 0.5, [[5, 1, 1]], [[1, 1, 5]]))
    frame = pl.DataFrame({"w0": counts[:, 0], "w1": counts[:, 1], "w2": counts[:, 2],
                          "label": np.where(counts[:, 0] > counts[:, 2], "a", "b")})
    paths = write_partitions(frame, tmp_path / "in", [2000, 2000])
    bigprep.SGDModel(target="label", model="multinomial-nb", epochs=1,
                     chunk_rows=500).fit(paths, checkpoint=str(tmp_path / "nb"))
    assert bigprep.SGDModel.load(str(tmp_path / "nb")).score(paths)["accuracy"] > 0.9
    bigprep.SGDModel(target=None, features=["w*"], model="kmeans", clusters=2, epochs=2,
                     chunk_rows=500).fit(paths, checkpoint=str(tmp_path / "km"))
    assert bigprep.SGDModel.load(str(tmp_path / "km")).score(paths)["inertia"] > 0


def test_training_is_reproducible_and_can_continue_on_new_data(tmp_path):
    tr, te, _, _ = split_time_ordered(tmp_path, drifting_classification(), "num_0")
    opts = {"epochs": 2, "chunk_rows": 4096, "categorical": ["carrier"]}
    bigprep.SGDModel(target="delayed", **opts).fit(tr[:4], checkpoint=str(tmp_path / "a"))
    bigprep.SGDModel(target="delayed", **opts).fit(tr[:4], checkpoint=str(tmp_path / "b"))
    (ma, _, _), (mb, _, _) = load_model(str(tmp_path / "a")), load_model(str(tmp_path / "b"))
    np.testing.assert_array_equal(ma.coef_, mb.coef_)
    result = bigprep.SGDModel.load(str(tmp_path / "a"), epochs=1, chunk_rows=4096).partial_fit(
        tr[4:], checkpoint=str(tmp_path / "a2"))
    assert [h["epoch"] for h in result.history_][-1] >= 2  # history carried on
    assert bigprep.SGDModel.load(str(tmp_path / "a2")).score(te)["roc_auc"] > 0.8


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_train_predict_evaluate(tmp_path):
    frame = drifting_classification().head(6000).with_row_index("id")
    paths = write_partitions(frame, tmp_path / "in", [3000, 3000])
    result = invoke("train", *paths, "--target", "delayed", "--out", tmp_path / "m",
                    "--features", "num_*", "--categorical", "carrier", "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert "epoch 1" in result.stderr
    result = invoke("predict", tmp_path / "m", *paths, "--out", tmp_path / "p", "--keep", "id",
                    "--proba", "-q")
    assert result.exit_code == 0, result.output
    assert read_output(tmp_path / "p", paths).columns == ["id", "prediction", "proba_0",
                                                           "proba_1"]
    twice = invoke("predict", tmp_path / "m", *paths, "--out", tmp_path / "p2", "--keep",
                   "id,id", "-q")
    assert twice.exit_code == 1 and "--keep id: named twice" in twice.stderr
    assert not (tmp_path / "p2").exists()
    result = invoke("evaluate", tmp_path / "m", *paths, "--json")
    assert result.exit_code == 0, result.output
    assert 0.5 < json.loads(result.stdout)["roc_auc"] <= 1
    assert "roc_auc" in invoke("evaluate", tmp_path / "m", *paths).stdout


@pytest.fixture
def labelled(tmp_path):
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 10, "s": ["a", "b"] * 20,
                          "y": [0, 1] * 20, "empty": pl.Series([None] * 40, dtype=pl.Int64)})
    return write_partitions(frame, tmp_path / "in", [20, 20])


@pytest.mark.parametrize("args, words", [
    (["--target", "nope"], ["'nope'", "not in the data"]),
    (["--target", "empty", "--features", "x"], ["'empty'", "null"]),
    (["--target", "y"], ["'s'", "--categorical s"]),
    (["--model", "linear", "--task", "classification", "--target", "y"], ["--task"]),
    (["--model", "logistic"], ["--target"]),
])
def test_train_bad_input_is_one_clear_message(tmp_path, labelled, args, words):
    result = invoke("train", *labelled, "--out", tmp_path / "m", *args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    for word in words:
        assert word in result.stderr
    assert not (tmp_path / "m").exists()


def test_predict_and_evaluate_refuse_bad_input_and_tampered_models(tmp_path, labelled):
    assert invoke("train", *labelled, "--out", tmp_path / "m", "--target", "y", "--features",
                  "x", "--categorical", "s", "-q").exit_code == 0
    other = write_partitions(pl.DataFrame({"s": ["a"], "y": [0]}), tmp_path / "o", [1])
    result = invoke("predict", tmp_path / "m", *other, "--out", tmp_path / "p")
    assert result.exit_code == 1 and "'x'" in result.stderr and not (tmp_path / "p").exists()
    unseen = write_partitions(pl.DataFrame({"x": [1.0], "s": ["a"], "y": [7]}), tmp_path / "u",
                              [1])
    result = invoke("evaluate", tmp_path / "m", *unseen)
    assert result.exit_code == 1 and "never saw" in result.stderr
    model_file = tmp_path / "m" / json.loads((tmp_path / "m" / "model.json").read_text())[
        "payload"]["model_file"]
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    result = invoke("predict", tmp_path / "m", *labelled, "--out", tmp_path / "p")
    assert result.exit_code == 1 and "refusing to load" in result.stderr
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / "model.json").write_text(json.dumps({**meta, "format": "other/9"}))
    result = invoke("evaluate", tmp_path / "m", *labelled)
    assert result.exit_code == 1 and "another format or version" in result.stderr


def test_a_model_holding_untrusted_types_is_refused(tmp_path, labelled):
    import hashlib

    import skops.io as sio

    assert invoke("train", *labelled, "--out", tmp_path / "m", "--target", "y", "--features",
                  "x", "-q").exit_code == 0
    blob = sio.dumps({"model": hashlib.sha256})  # a type outside scikit-learn and numpy
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / meta["payload"]["model_file"]).write_bytes(blob)
    meta["payload"]["sha256"] = hashlib.sha256(blob).hexdigest()  # even with a matching checksum
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    result = invoke("evaluate", tmp_path / "m", *labelled)
    assert result.exit_code == 1 and "does not trust" in result.stderr


@pytest.mark.parametrize("command", [["train"], ["predict"], ["evaluate"]])
def test_model_commands_have_help_with_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Example:" in result.output
