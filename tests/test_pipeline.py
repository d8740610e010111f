"""Pipelines: specs checked before any data is read, runs that process only the new
partitions (by content), fused steps, and what the ledger and status report.

The oracle of an incremental run is a single run over everything: the statistics
(median, mode, document frequencies) and the outputs of the new partitions
(ffill / interpolate across last run's boundary) must be equal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import bigprep
from bigprep import BigprepError
from bigprep.errors import UsageError
from bigprep.io import dataset as dataset_module
from bigprep.io.lock import locked
from bigprep.pipeline import load_spec, run_pipeline
from bigprep.pipeline.status import pipeline_status

ROOT = Path(__file__).resolve().parent.parent
SENSORS = ROOT / "sample_data" / "sensors"
TEXT = ROOT / "sample_data" / "text" / "en"

IMPUTE = """
  - impute:
      group_by: sensor_id
      order_by: ts
      columns: {temp: "interpolate,ffill,median", humidity: ffill, status: mode}
      add_indicator: true
"""

TRAIN = """
  - impute: {columns: {temp: "ffill,median", humidity: median}, group_by: sensor_id,
             order_by: ts}
  - train: {model: linear, target: calib, features: "temp,humidity", epochs: 2}
  - predict: {}
"""

STATISTICS = "\n  - impute: {columns: {temp: median, status: mode}}\n"


def write_spec(folder: Path, name: str, steps: str, data: str = "data",
               extra: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\ninput: {data}/\noutput: out-{name}/\n"
                    f"state: state-{name}/\n{extra}steps:{steps}")
    return path


def copy_parts(source: Path, target: Path, names: list[str]) -> None:
    target.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(source / name, target / name)


def parts(source: Path) -> list[str]:
    return sorted(p.name for p in source.glob("*.parquet"))


def outputs(folder: Path) -> dict:
    return {p.name: pl.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


class Reads:
    """The partitions whose data a run reads (footers are read for every input)."""

    def __init__(self, monkeypatch):
        self.paths: set = set()
        real = dataset_module.iter_chunks

        def spy(partition, *args, **kwargs):
            self.paths.add(os.path.basename(partition.path))
            return real(partition, *args, **kwargs)
        monkeypatch.setattr("bigprep.engine.passes.iter_chunks", spy)
        monkeypatch.setattr("bigprep.io.dataset.iter_chunks", spy)
        real_lazy = bigprep.ops.impute.apply.ImputeTransform.lazy

        def lazy(transform, partition):
            self.paths.add(os.path.basename(partition.path))
            return real_lazy(transform, partition)
        monkeypatch.setattr(bigprep.ops.impute.apply.ImputeTransform, "lazy", lazy)


def test_second_run_reads_only_new_partitions_and_equals_a_single_run(tmp_path, monkeypatch):
    names = parts(SENSORS)
    copy_parts(SENSORS, tmp_path / "data", names[:5])
    spec = load_spec(str(write_spec(tmp_path, "nightly", IMPUTE)))
    first = run_pipeline(spec)
    assert first.processed == names[:5]
    copy_parts(SENSORS, tmp_path / "data", names[5:])
    reads = Reads(monkeypatch)
    second = run_pipeline(spec)
    assert second.processed == names[5:]
    assert reads.paths == set(names[5:])  # history is not read again
    copy_parts(SENSORS, tmp_path / "all", names)
    whole = run_pipeline(load_spec(str(write_spec(tmp_path, "whole", IMPUTE, data="all"))))
    assert whole.processed == names
    got, want = outputs(tmp_path / "out-nightly"), outputs(tmp_path / "out-whole")
    assert sorted(got) == names
    for name in names[5:]:  # carried across the boundary, with the merged statistics
        assert got[name].equals(want[name]), name
    # the merged statistics equal those of one fit over everything
    state = json.loads((tmp_path / "state-nightly" / "ledger.json").read_text())["states"]
    merged = bigprep.Imputer.load(str(tmp_path / "state-nightly" / state["1-impute"]))
    state = json.loads((tmp_path / "state-whole" / "ledger.json").read_text())["states"]
    single = bigprep.Imputer.load(str(tmp_path / "state-whole" / state["1-impute"]))
    assert merged.statistics_ == single.statistics_
    assert run_pipeline(spec).status == "nothing new"


def test_tfidf_update_equals_a_single_fit(tmp_path):
    names = parts(TEXT)
    copy_parts(TEXT, tmp_path / "data", names[:2])
    steps = "\n  - tfidf: {text_column: body, min_df: 2, keywords: 3}\n"
    spec = load_spec(str(write_spec(tmp_path, "text", steps)))
    run_pipeline(spec)
    copy_parts(TEXT, tmp_path / "data", names[2:])
    run_pipeline(spec)
    ledger = json.loads((tmp_path / "state-text" / "ledger.json").read_text())
    merged = bigprep.TfidfVectorizer.load(
        str(tmp_path / "state-text" / ledger["states"]["1-tfidf"]))
    single = bigprep.TfidfVectorizer(min_df=2).fit(
        [str(TEXT / n) for n in names], text_column="body")
    assert merged.documents_ == single.documents_
    assert set(merged.vocabulary_) == set(single.vocabulary_)
    idf = {t: merged.idf_[i] for t, i in merged.vocabulary_.items()}
    assert idf == pytest.approx({t: single.idf_[i] for t, i in single.vocabulary_.items()})
    out = outputs(tmp_path / "out-text")
    assert sorted(out) == names
    first = out[names[0]]
    assert first.columns == ["id", "title", "body", "tfidf_indices", "tfidf_weights",
                             "keywords"]


def test_impute_then_predict_in_one_read_and_one_write(tmp_path):
    copy_parts(SENSORS, tmp_path / "data", parts(SENSORS))
    model = tmp_path / "model"
    bigprep.SGDModel(model="linear", target="calib", features="temp,humidity",
                     epochs=2).fit(str(tmp_path / "data"), checkpoint=str(model))
    steps = IMPUTE + f"  - predict: {{model: {model}}}\n"
    spec = load_spec(str(write_spec(tmp_path, "score", steps)))
    report = run_pipeline(spec)
    assert len(report.files) == len(parts(SENSORS))
    out = pl.read_parquet(tmp_path / "out-score" / "*.parquet")
    assert "prediction" in out.columns and "temp__missing" in out.columns
    assert out["temp"].null_count() == 0 and out["prediction"].null_count() == 0


def test_new_file_with_an_older_name_is_new_and_a_rewritten_file_is_changed(tmp_path):
    names = parts(SENSORS)
    copy_parts(SENSORS, tmp_path / "data", names[2:5])
    # statistics only: late data with earlier times would stop an order_by (as it must)
    spec = load_spec(str(write_spec(tmp_path, "p", STATISTICS)))
    run_pipeline(spec)
    copy_parts(SENSORS, tmp_path / "data", names[:1])  # sorts before everything done
    assert run_pipeline(spec).processed == names[:1]
    frame = pl.read_parquet(tmp_path / "data" / names[2]).head(10)
    frame.write_parquet(tmp_path / "data" / names[2])  # rewritten in place
    report = run_pipeline(spec)
    assert report.status == "nothing new" and report.skipped == {"changed": [names[2]]}
    info = pipeline_status(spec)
    assert info["partitions"]["changed"] == 1 and info["changed"] == [names[2]]
    full = run_pipeline(spec, full=True)
    assert full.processed == sorted(names[:1] + names[2:5])
    assert pipeline_status(spec)["partitions"]["changed"] == 0
    assert pl.read_parquet(tmp_path / "out-p" / names[2]).height == 10


def test_a_changed_spec_is_refused_until_full(tmp_path):
    copy_parts(SENSORS, tmp_path / "data", parts(SENSORS)[:2])
    run_pipeline(load_spec(str(write_spec(tmp_path, "p", IMPUTE))))
    copy_parts(SENSORS, tmp_path / "data", parts(SENSORS)[2:3])
    changed = load_spec(str(write_spec(tmp_path, "p", IMPUTE.replace("mode", "constant:ok"))))
    with pytest.raises(BigprepError, match="steps changed.*full"):
        run_pipeline(changed)
    assert run_pipeline(changed, full=True).processed == parts(SENSORS)[:3]


def test_dry_run_changes_nothing(tmp_path):
    copy_parts(SENSORS, tmp_path / "data", parts(SENSORS)[:2])
    spec = load_spec(str(write_spec(tmp_path, "p", IMPUTE)))
    report = run_pipeline(spec, dry_run=True)
    assert report.processed == parts(SENSORS)[:2] and "fit" in " ".join(report.plan)
    assert not (tmp_path / "out-p").exists() and not (tmp_path / "state-p").exists()
    run_pipeline(spec)
    assert run_pipeline(spec, dry_run=True).plan == ["nothing new: read, fit and write nothing"]


def test_a_second_run_is_told_who_holds_the_lock(tmp_path):
    copy_parts(SENSORS, tmp_path / "data", parts(SENSORS)[:1])
    path = write_spec(tmp_path, "p", IMPUTE)
    with locked(str(tmp_path / "state-p" / "pipeline")):
        done = subprocess.run([sys.executable, "-m", "bigprep", "run", str(path)],
                              capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "pid" in done.stderr, done.stderr
    assert not (tmp_path / "out-p").exists()


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bigprep", *map(str, args)],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("steps, line, words", [
    ("\n  - impute: {strategy: medain}\n", 6, ["strategy", "medain"]),
    ("\n  - impute:\n      group_bu: sensor_id\n", 7, ["group_bu", "group_by"]),
    ("\n  - imput: {}\n", 6, ["imput", "impute"]),
    ("\n  - tfidf: {text_column: body, min_df: many}\n", 6, ["min_df"]),
    (("\n  - tfidf: {text_column: body, keep: [id], keywords: 2}\n"
     "  - impute: {columns: {title: mode}}\n"), 7, ["title", "keep"]),
    ("\n  - impute: {columns: {keywords: mode}}\n  - tfidf: {text_column: body, keywords: 2}\n",
     6, ["keywords", "later"]),
    ("\n  - impute: {chunk_rows: 5}\n", 6, ["chunk_rows", "whole pipeline"]),
])
def test_validate_names_file_line_and_cause(tmp_path, steps, line, words):
    path = write_spec(tmp_path, "bad", steps)
    done = cli("validate", path)
    assert done.returncode == 2, done.stderr
    assert f"{path}:{line}:" in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_validate_top_level_keys_and_yaml(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\ninput: d/\noutput: o/\nstate: s/\nstep:\n  - impute: {}\n")
    done = cli("validate", path)
    assert done.returncode == 2 and f"{path}:5:" in done.stderr and "steps" in done.stderr
    path.write_text("name: p\ninput: [d/\n")
    done = cli("validate", path)
    assert done.returncode == 2 and f"{path}:" in done.stderr and "YAML" in done.stderr
    with pytest.raises(UsageError, match="required"):
        path.write_text("name: p\ninput: d/\noutput: o/\nsteps:\n  - impute: {}\n")
        load_spec(str(path))


def test_the_example_pipelines_validate():
    for path in sorted((ROOT / "pipelines").glob("*.yaml")):
        assert cli("validate", path).returncode == 0, path


def test_cli_run_log_json_and_status(tmp_path):
    copy_parts(SENSORS, tmp_path / "data", parts(SENSORS)[:2])
    path = write_spec(tmp_path, "p", IMPUTE)
    done = cli("run", path, "--log-json", "-q")
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout)
    assert line["status"] == "done" and line["partitions"] == 2 and line["rows"] > 0
    again = json.loads(cli("run", path, "--log-json", "-q").stdout)
    assert again["status"] == "nothing new"
    status = json.loads(cli("status", path, "--json").stdout)
    assert status["partitions"]["done"] == 2 and status["runs"] == 2


def tree(folder: Path) -> dict:
    """Every file below ``folder`` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("steps, below", [
    (IMPUTE + "  - tfidf: {text_column: note, keywords: 2, vectors: false}\n", "."),
    (TRAIN, "state-p")], ids=["impute-tfidf", "impute-train-predict"])
def test_run_killed_at_every_step_ends_as_an_uninterrupted_run(tmp_path, steps, below):
    """SIGKILL before each file operation of a run (staging, every output, the publish,
    each state or model, the ledger, the clean-up), then a plain re-run: the output and
    the states are byte for byte those of a run never killed, the ledger says the same,
    and nothing temporary is left. (With a train step, the operations in the state
    folder: the outputs' are the same as without.)"""
    from tests.test_kill_points import every_kill_point

    names = parts(SENSORS)[:3]
    copy_parts(SENSORS, tmp_path / "data", names)
    reference, work = tmp_path / "reference", tmp_path / "work"
    for folder in (reference, work):
        folder.mkdir()
        write_spec(folder, "p", steps, data="../data")
        (tmp_path / "data" / names[2]).rename(tmp_path / "held")  # the first run: two
        assert cli("run", folder / "p.yaml", "-q").returncode == 0
        (tmp_path / "held").rename(tmp_path / "data" / names[2])
    assert cli("run", reference / "p.yaml", "-q").returncode == 0
    want = tree(reference)
    ledger = json.loads((reference / "state-p" / "ledger.json").read_text())
    backup = tmp_path / "backup"
    shutil.copytree(work, backup)
    points = 0
    for points in every_kill_point(work / below, "run", work / "p.yaml", options=("-q",)):
        assert cli("run", work / "p.yaml", "-q").returncode == 0
        got = tree(work)
        assert sorted(got) == sorted(want), f"kill point {points}"
        differ = [k for k in got if got[k] != want[k] and "ledger" not in k]
        assert not differ, f"kill point {points}: {differ}"
        again = json.loads((work / "state-p" / "ledger.json").read_text())
        assert (again["partitions"], again["states"]) == (ledger["partitions"],
                                                          ledger["states"])
        shutil.rmtree(work)
        shutil.copytree(backup, work)
    assert points >= 8


def test_the_example_pipelines_run_on_the_sample_data(tmp_path):
    """Each example in pipelines/ runs as its header says (in a copy of the tree, so
    nothing is written into the repository), and a second run has nothing new."""
    (tmp_path / "pipelines").mkdir()
    for path in (ROOT / "pipelines").glob("*.yaml"):
        shutil.copy(path, tmp_path / "pipelines" / path.name)
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    for path in sorted((tmp_path / "pipelines").glob("*.yaml")):
        first = cli("run", path, "--log-json", "-q")
        assert first.returncode == 0, (path.name, first.stderr)
        assert json.loads(first.stdout)["status"] == "done"
        second = cli("run", path, "--log-json", "-q")
        assert json.loads(second.stdout)["status"] == "nothing new"
    scored = pl.read_parquet(tmp_path / "scored" / "sensors" / "*.parquet")
    assert scored["prediction"].null_count() == 0
    model = cli("evaluate", tmp_path / "state" / "sensors_model" / "steps" / "2-train.g1",
                tmp_path / "scored" / "sensors", "--json")
    assert model.returncode == 0, model.stderr
    keywords = pl.read_parquet(tmp_path / "keywords" / "en" / "*.parquet")
    assert keywords["keywords"].list.len().max() == 5


def test_a_runs_data_errors_name_the_spec_keys_not_cli_flags(tmp_path):
    copy_parts(SENSORS, tmp_path / "data", parts(SENSORS)[:1])
    done = cli("run", write_spec(tmp_path, "p", "\n  - tfidf: {text_column: bodyy}\n"))
    assert done.returncode == 1 and "text_column: column 'bodyy'" in done.stderr, done.stderr
    assert "--text-column" not in done.stderr
    inside = tmp_path / "q.yaml"
    inside.write_text("name: q\ninput: data/\noutput: data/out/\nstate: s/\n"
                      "steps:\n  - impute: {}\n")
    done = cli("run", inside)
    assert done.returncode == 1 and "output " in done.stderr and "--out" not in done.stderr


class Reductions:
    """The labels of the fit reductions a run makes (each one reads the data once per
    pass)."""

    def __init__(self, monkeypatch):
        from bigprep.ops import base

        self.labels: list = []
        real = base.reduce

        def spy(*args, **kwargs):
            self.labels.append(kwargs["label"])
            return real(*args, **kwargs)
        monkeypatch.setattr(base, "reduce", spy)


FUSABLE = """
  - impute:
      group_by: sensor_id
      order_by: ts
      columns: {temp: "interpolate,ffill,median", status: mode}
  - tfidf: {text_column: note, keywords: 3}
"""


@pytest.mark.parametrize("note_filled", [False, True])
def test_fits_share_a_read_unless_a_step_reads_what_an_earlier_one_fills(
        tmp_path, monkeypatch, note_filled):
    """impute and tfidf fit in one read when tfidf's column is not imputed; when it is,
    tfidf fits on the imputed text. Either way the run equals the two operations run
    one after another through files."""
    copy_parts(SENSORS, tmp_path / "data", parts(SENSORS))
    steps = FUSABLE.replace("status: mode}", "status: mode, note: 'constant:quiet'}") \
        if note_filled else FUSABLE
    spec = load_spec(str(write_spec(tmp_path, "fused", steps)))
    reductions = Reductions(monkeypatch)
    run_pipeline(spec)
    assert reductions.labels == (["impute", "tfidf"] if note_filled else ["impute+tfidf"])

    columns = {"temp": "interpolate,ffill,median", "status": "mode"}
    if note_filled:
        columns["note"] = "constant:quiet"
    imputer = bigprep.Imputer(columns=columns, group_by="sensor_id", order_by="ts")
    imputer.fit_transform(str(tmp_path / "data"), out=str(tmp_path / "imputed"))
    data = pl.read_parquet(tmp_path / "imputed" / "*.parquet")
    vectorizer = bigprep.TfidfVectorizer().fit(str(tmp_path / "imputed"), text_column="note")
    vectorizer.transform(str(tmp_path / "imputed"), out=str(tmp_path / "vectors"),
                         keep=data.columns, keywords=3)
    want = pl.read_parquet(tmp_path / "vectors" / "*.parquet")
    got = pl.read_parquet(tmp_path / "out-fused" / "*.parquet")
    assert got.equals(want)
    assert ("quiet" in vectorizer.vocabulary_) == note_filled
    ledger = json.loads((tmp_path / "state-fused" / "ledger.json").read_text())
    fitted = bigprep.TfidfVectorizer.load(str(tmp_path / "state-fused" /
                                              ledger["states"]["2-tfidf"]))
    assert fitted.vocabulary_ == vectorizer.vocabulary_
    assert list(fitted.idf_) == list(vectorizer.idf_)




def test_train_then_predict_continues_the_model_on_new_partitions(tmp_path):
    """The model trains on the imputed chunks in memory exactly as SGDModel trains on
    the imputed files: fit in the first run, partial_fit on the new partitions next."""
    names = parts(SENSORS)
    copy_parts(SENSORS, tmp_path / "data", names[:5])
    spec = load_spec(str(write_spec(tmp_path, "model", TRAIN)))
    run_pipeline(spec)
    first = sorted((tmp_path / "out-model").glob("*.parquet"))
    oracle = bigprep.SGDModel(model="linear", target="calib", features="temp,humidity",
                              epochs=2).fit([str(p) for p in first])
    copy_parts(SENSORS, tmp_path / "data", names[5:])
    report = run_pipeline(spec)
    assert report.processed == names[5:]
    assert [s.get("updated") for s in report.steps] == [True, True, None]
    new = [tmp_path / "out-model" / n for n in names[5:]]
    oracle.partial_fit([str(p) for p in new])
    ledger = json.loads((tmp_path / "state-model" / "ledger.json").read_text())
    model = bigprep.SGDModel.load(str(tmp_path / "state-model" / ledger["states"]["2-train"]))
    assert model.estimator_.coef_.tolist() == oracle.estimator_.coef_.tolist()
    assert len(model.history_) == 4 and len(model.seen_) == len(names)
    got = pl.read_parquet(new)
    oracle.predict([str(p) for p in new], out=str(tmp_path / "oracle"), keep=["ts"])
    want = pl.read_parquet(tmp_path / "oracle" / "*.parquet")
    assert got["prediction"].to_list() == want["prediction"].to_list()
    assert got["temp"].null_count() == 0


def test_predict_without_a_model_needs_a_train_step_before(tmp_path):
    path = write_spec(tmp_path, "p", "\n  - impute: {strategy: mean}\n  - predict: {}\n")
    with pytest.raises(UsageError, match=r"p\.yaml:7: step 2 \(predict\): model is "
                                         "required"):
        load_spec(str(path))


def spoil(source: Path, target: Path, how: str) -> None:
    """A partition that fails: an infinite reading next to a gap (found while writing),
    or a column of another type (found when listing)."""
    frame = pl.read_parquet(source)
    if how == "inf":
        sensor = frame.filter(pl.col("temp").is_null())["sensor_id"][0]
        frame = frame.with_columns(pl.when(pl.col("sensor_id") == sensor)
                                   .then(pl.col("temp") * float("inf"))
                                   .otherwise(pl.col("temp")).alias("temp"))
    else:
        frame = frame.with_columns(pl.col("temp").cast(pl.String))
    frame.write_parquet(target)


def test_keep_going_records_failed_partitions_and_retry_failed_redoes_them(tmp_path):
    names = parts(SENSORS)
    copy_parts(SENSORS, tmp_path / "data", names[:3])
    spec = load_spec(str(write_spec(tmp_path, "p", IMPUTE)))
    run_pipeline(spec)
    copy_parts(SENSORS, tmp_path / "data", names[3:5])
    spoil(SENSORS / names[5], tmp_path / "data" / names[5], "inf")
    spoil(SENSORS / names[6], tmp_path / "data" / names[6], "drift")
    ledger_path = tmp_path / "state-p" / "ledger.json"
    before = json.loads(ledger_path.read_text())

    with pytest.raises(BigprepError, match=names[6]):  # by default the first failure stops
        run_pipeline(spec)
    after = json.loads(ledger_path.read_text())
    assert after["partitions"] == before["partitions"]  # nothing recorded ...
    assert after["runs"][-1]["status"] == "failed"  # ... but the failed run is logged
    assert sorted(p.name for p in (tmp_path / "out-p").glob("*.parquet")) == names[:3]

    report = run_pipeline(spec, keep_going=True)
    assert report.status == "partly done" and report.processed == names[3:5]
    assert sorted(report.failed) == names[5:7]
    assert "infinite" in report.failed[names[5]] and "drift" in report.failed[names[6]]
    assert sorted(p.name for p in (tmp_path / "out-p").glob("*.parquet")) == names[:5]
    # the states learned from the good partitions only: as one run over them
    copy_parts(SENSORS, tmp_path / "good", names[:5])
    run_pipeline(load_spec(str(write_spec(tmp_path, "good", IMPUTE, data="good"))))
    merged = json.loads(ledger_path.read_text())["states"]["1-impute"]
    single = json.loads((tmp_path / "state-good" / "ledger.json").read_text())["states"]
    assert bigprep.Imputer.load(str(tmp_path / "state-p" / merged)).statistics_ == \
        bigprep.Imputer.load(str(tmp_path / "state-good" / single["1-impute"])).statistics_

    again = run_pipeline(spec)  # the failed ones stay aside, without --keep-going
    assert again.status == "nothing new" and sorted(again.skipped["failed"]) == names[5:7]
    info = pipeline_status(spec)
    assert info["partitions"]["failed"] == 2 and sorted(info["failed"]) == names[5:7]
    with pytest.raises(BigprepError, match="drift"):  # retried, still failing
        run_pipeline(spec, retry_failed=True)

    copy_parts(SENSORS, tmp_path / "data", names[5:6])  # fixed: new content, so new
    fixed = run_pipeline(spec)
    assert fixed.processed == [names[5]]
    frame = pl.read_parquet(SENSORS / names[6])
    frame.write_parquet(tmp_path / "data" / names[6])
    assert run_pipeline(spec).processed == [names[6]]
    assert pipeline_status(spec)["partitions"]["failed"] == 0


def test_keep_going_exit_code_and_json(tmp_path):
    names = parts(SENSORS)
    copy_parts(SENSORS, tmp_path / "data", names[:2])
    spoil(SENSORS / names[2], tmp_path / "data" / names[2], "drift")
    spec = write_spec(tmp_path, "p", STATISTICS)
    plain = cli("run", spec, "-q", "--log-json")
    assert plain.returncode == 1 and names[2] in plain.stderr
    assert json.loads(plain.stdout)["status"] == "failed"
    kept = cli("run", spec, "--keep-going", "--log-json", "-q")
    assert kept.returncode == 3, kept.stderr
    line = json.loads(kept.stdout)
    assert line["status"] == "partly done" and line["partitions"] == 2
    assert list(line["failed"]) == [names[2]]
    status = cli("status", spec)
    assert "failed     1" in status.stdout and names[2] in status.stdout


def test_reprocess_changed_rewrites_outputs_with_the_saved_states(tmp_path):
    names = parts(SENSORS)
    copy_parts(SENSORS, tmp_path / "data", names[:3])
    spec = load_spec(str(write_spec(tmp_path, "p", STATISTICS)))
    run_pipeline(spec)
    ledger_path = tmp_path / "state-p" / "ledger.json"
    state = json.loads(ledger_path.read_text())["states"]["1-impute"]
    median = bigprep.Imputer.load(str(tmp_path / "state-p" / state)).statistics_["temp"]
    frame = pl.read_parquet(SENSORS / names[1])
    frame = frame.with_columns(pl.lit(None, pl.Float64).alias("temp"))  # all readings lost
    frame.write_parquet(tmp_path / "data" / names[1])
    assert run_pipeline(spec).skipped == {"changed": [names[1]]}
    report = run_pipeline(spec, reprocess_changed=True)
    assert report.reapplied == [names[1]] and report.processed == []
    out = pl.read_parquet(tmp_path / "out-p" / names[1])
    assert out["temp"].to_list() == [median["median"]] * frame.height
    ledger = json.loads(ledger_path.read_text())
    assert ledger["states"]["1-impute"] == state  # the states learned nothing
    assert run_pipeline(spec).status == "nothing new"


def test_a_failed_rewrite_of_a_done_partition_stays_changed(tmp_path):
    """A done file re-uploaded broken is recorded as failed without forgetting that its
    old rows are in the states: once complete again it is changed, not new."""
    names = parts(SENSORS)
    copy_parts(SENSORS, tmp_path / "data", names[:3])
    spec = load_spec(str(write_spec(tmp_path, "p", STATISTICS)))
    run_pipeline(spec)
    spoil(SENSORS / names[1], tmp_path / "data" / names[1], "drift")
    report = run_pipeline(spec, keep_going=True)
    assert list(report.failed) == [names[1]] and report.status == "failed"
    frame = pl.read_parquet(SENSORS / names[1]).head(100)
    frame.write_parquet(tmp_path / "data" / names[1])  # complete again, other rows
    again = run_pipeline(spec)
    assert again.processed == [] and again.skipped == {"changed": [names[1]]}
    retried = run_pipeline(spec, retry_failed=True)  # nothing failed any more
    assert retried.status == "nothing new"


def test_a_drifted_backfill_that_sorts_first_is_the_one_set_aside(tmp_path):
    names = parts(SENSORS)
    copy_parts(SENSORS, tmp_path / "data", names[1:3])
    spec = load_spec(str(write_spec(tmp_path, "p", STATISTICS)))
    run_pipeline(spec)
    spoil(SENSORS / names[0], tmp_path / "data" / names[0], "drift")  # older name
    copy_parts(SENSORS, tmp_path / "data", names[3:5])  # and good new ones
    report = run_pipeline(spec, keep_going=True)
    assert list(report.failed) == [names[0]] and report.processed == names[3:5]
    info = pipeline_status(spec)
    assert info["partitions"]["done"] == 4 and info["partitions"]["failed"] == 1


def test_reprocess_changed_refuses_fills_across_partitions(tmp_path):
    names = parts(SENSORS)
    copy_parts(SENSORS, tmp_path / "data", names[:2])
    spec = load_spec(str(write_spec(tmp_path, "p", IMPUTE)))
    run_pipeline(spec)
    pl.read_parquet(SENSORS / names[0]).head(50).write_parquet(tmp_path / "data" / names[0])
    with pytest.raises(BigprepError, match=r"reprocess_changed.*in order.*full"):
        run_pipeline(spec, reprocess_changed=True)


def test_an_impute_with_a_strategy_does_not_fuse_after_a_step_that_adds_columns(
        tmp_path, monkeypatch):
    copy_parts(SENSORS, tmp_path / "data", parts(SENSORS)[:2])
    steps = ("\n  - tfidf: {text_column: note, keywords: 2, vectors: false}"
             "\n  - impute: {columns: {temp: median}, strategy: mode}\n")
    spec = load_spec(str(write_spec(tmp_path, "p", steps)))
    reductions = Reductions(monkeypatch)
    run_pipeline(spec)
    assert reductions.labels == ["tfidf", "impute"]  # impute also plans `keywords`


def test_validate_a_train_step_needs_a_target(tmp_path):
    path = write_spec(tmp_path, "p", "\n  - train: {model: logistic, features: [temp]}\n")
    with pytest.raises(UsageError, match=r"p\.yaml:6: train: a classification model "
                                         r"\(logistic\) needs target"):
        load_spec(str(path))
