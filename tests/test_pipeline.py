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


def test_run_killed_at_every_step_ends_as_an_uninterrupted_run(tmp_path):
    """SIGKILL before each file operation of a run (staging, every output, the publish,
    each state, the ledger, the clean-up), then a plain re-run: the output and the
    states are byte for byte those of a run never killed, the ledger says the same,
    and nothing temporary is left."""
    from tests.test_kill_points import every_kill_point

    names = parts(SENSORS)[:3]
    copy_parts(SENSORS, tmp_path / "data", names)
    steps = IMPUTE + "  - tfidf: {text_column: note, keywords: 2, vectors: false}\n"
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
    for points in every_kill_point(work, "run", work / "p.yaml", options=("-q",)):
        assert cli("run", work / "p.yaml", "-q").returncode == 0
        got = tree(work)
        assert {k: v for k, v in got.items() if "ledger" not in k} == \
            {k: v for k, v in want.items() if "ledger" not in k}, f"kill point {points}"
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
    trained = cli("train", tmp_path / "sample_data" / "sensors", "--target", "calib",
                  "--features", "temp,humidity", "--model", "linear", "--out",
                  tmp_path / "models" / "sensor_calib", "-q")
    assert trained.returncode == 0, trained.stderr
    for path in sorted((tmp_path / "pipelines").glob("*.yaml")):
        first = cli("run", path, "--log-json", "-q")
        assert first.returncode == 0, (path.name, first.stderr)
        assert json.loads(first.stdout)["status"] == "done"
        second = cli("run", path, "--log-json", "-q")
        assert json.loads(second.stdout)["status"] == "nothing new"
    scored = pl.read_parquet(tmp_path / "scored" / "sensors" / "*.parquet")
    assert scored["prediction"].null_count() == 0
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
