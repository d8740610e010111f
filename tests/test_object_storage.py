"""s3:// paths against a real S3-compatible server on loopback (moto's server mode)."""

from __future__ import annotations

import json
import os

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import bigprep
from bigprep import Executor
from bigprep.cli import main
from bigprep.io.sink import write_partition
from tests.helpers import impute, read_output, with_holes, write_partitions

moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a free loopback port, credentials in the environment."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    fs = s3fs.S3FileSystem(endpoint_url=endpoint)
    fs.mkdir("bucket")
    yield fs, endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def remote_data(s3, tmp_path, rng):
    fs, endpoint = s3
    n = 2000
    frame = pl.DataFrame({"g": rng.choice(["a", "b"], n), "t": np.arange(n),
                          "x": with_holes(rng, rng.normal(size=n)),
                          "s": with_holes(rng, rng.choice(["u", "v"], n)),
                          "body": rng.choice(["quick fox", "lazy dog", "fox and dog"], n)})
    paths = write_partitions(frame, tmp_path / "local", [700, 0, 800, 500], row_group_size=300)
    prefix = f"bucket/{tmp_path.name}"
    for p in paths:
        fs.put_file(p, f"{prefix}/raw/day/{os.path.basename(p)}")
    return fs, endpoint, prefix, paths


OPTIONS = {"columns": {"x": "interpolate,ffill,median", "s": "bfill,mode"}, "group_by": "g",
           "order_by": "t"}


def test_impute_from_s3_to_s3_equals_local(remote_data, tmp_path):
    fs, endpoint, prefix, paths = remote_data
    storage = {"endpoint_url": endpoint}
    impute(paths, str(tmp_path / "local_out"), chunk_rows=256, **OPTIONS)
    report = impute([f"s3://{prefix}/raw/"], f"s3://{prefix}/clean/", chunk_rows=256,
                    state_path=f"s3://{prefix}/state/impute.json", storage_options=storage,
                    **OPTIONS)
    assert [f["file"] for f in report.files] == [f"day/part-{k}.parquet" for k in range(4)]
    for k, path in enumerate(paths):
        with fs.open(f"{prefix}/clean/day/part-{k}.parquet") as fh:
            remote = pl.read_parquet(fh)
        assert remote.equals(pl.read_parquet(tmp_path / "local_out" / os.path.basename(path)))
    assert fs.exists(f"{prefix}/clean/_bigprep_manifest.json")
    saved = json.loads(fs.cat(f"{prefix}/state/impute.json"))
    assert fs.exists(f"{prefix}/state/{saved['sidecar']}")
    assert not [k for k in fs.find(f"{prefix}/clean") if "bigprep-tmp" in k]


def test_cli_with_storage_option_update_and_a_cluster(remote_data, tmp_path):
    from distributed import LocalCluster

    _, endpoint, prefix, _ = remote_data
    runner = CliRunner()
    base = ["--storage-option", f"endpoint_url={endpoint}", "-q"]
    result = runner.invoke(main, ["impute", f"s3://{prefix}/raw/day/part-[01].parquet",
                                  "--out", f"s3://{prefix}/c1/", "--strategy", "mean",
                                  "--state", f"s3://{prefix}/s.json", *base])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["impute", f"s3://{prefix}/raw/day/part-[23].parquet",
                                  "--out", f"s3://{prefix}/c2/", "--state", f"s3://{prefix}/s.json",
                                  "--update", *base])
    assert result.exit_code == 0, result.output
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        result = runner.invoke(main, ["profile", f"s3://{prefix}/raw/", "--json", "--scheduler",
                                      cluster.scheduler_address, *base])
    assert result.exit_code == 0, result.output
    assert '"rows": 2000' in result.stdout
    result = runner.invoke(main, ["impute", f"s3://{prefix}/nothing/*.parquet", "--out",
                                  f"s3://{prefix}/c3/", *base])
    assert result.exit_code == 1 and "matches no" in result.stderr


def test_tfidf_on_s3_equals_local(remote_data, tmp_path):
    fs, endpoint, prefix, paths = remote_data
    storage = {"endpoint_url": endpoint}
    local = bigprep.TfidfVectorizer(chunk_rows=256).fit(paths, text_column="body")
    remote = bigprep.TfidfVectorizer(chunk_rows=256, storage_options=storage).fit(
        [f"s3://{prefix}/raw/"], text_column="body")
    remote.save(f"s3://{prefix}/tfidf.json")
    remote = bigprep.TfidfVectorizer.load(f"s3://{prefix}/tfidf.json", storage_options=storage)
    assert remote.state_.counts.counts.sort("__bp_term").equals(
        local.state_.counts.counts.sort("__bp_term"))
    with Executor(workers=2) as executor:
        remote.set_params(executor=executor)
        remote.transform([f"s3://{prefix}/raw/"], out=f"s3://{prefix}/vec/", keywords=2)
    local.transform(paths, out=str(tmp_path / "vec"), keywords=2)
    with fs.open(f"{prefix}/vec/day/part-2.parquet") as fh:
        assert pl.read_parquet(fh).equals(read_output(tmp_path / "vec", paths[2:3]))


def test_a_failed_upload_leaves_no_object(s3):
    fs, endpoint = s3

    def frames():
        yield pl.DataFrame({"x": [1, 2]})
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError):
        write_partition("s3://bucket/atomic/a.parquet", frames(), pl.Schema({"x": pl.Int64}),
                        options={"endpoint_url": endpoint})
    assert not fs.exists("bucket/atomic/a.parquet")


def test_train_predict_evaluate_from_s3_on_a_cluster_equal_local(remote_data, tmp_path):
    fs, endpoint, prefix, paths = remote_data
    storage = {"endpoint_url": endpoint}
    args = {"target": "s", "features": ["x", "t"], "categorical": ["g"], "epochs": 2,
            "chunk_rows": 256}
    clean = impute(paths, str(tmp_path / "clean"), columns={"x": "mean", "s": "mode"})
    cleaned = [str(tmp_path / "clean" / os.path.basename(p)) for p in paths]
    for k, path in enumerate(cleaned):
        fs.put_file(path, f"{prefix}/cleaned/part-{k}.parquet")
    bigprep.SGDModel(**args).fit(cleaned, checkpoint=str(tmp_path / "m_local"))
    with Executor(workers=2) as executor:
        bigprep.SGDModel(executor=executor, storage_options=storage, **args).fit(
            [f"s3://{prefix}/cleaned/"], checkpoint=str(tmp_path / "m_remote"))
        remote = bigprep.SGDModel.load(str(tmp_path / "m_remote"), executor=executor,
                                       storage_options=storage)
        remote_metrics = remote.score([f"s3://{prefix}/cleaned/"])
        remote.predict([f"s3://{prefix}/cleaned/"], out=f"s3://{prefix}/pred/", keep=["t"],
                       proba=True)
    local = bigprep.SGDModel.load(str(tmp_path / "m_local"))
    assert remote_metrics == local.score(cleaned)
    local.predict(cleaned, out=str(tmp_path / "pred"), keep=["t"], proba=True)
    with fs.open(f"{prefix}/pred/part-3.parquet") as fh:
        assert pl.read_parquet(fh).equals(pl.read_parquet(tmp_path / "pred" / "part-3.parquet"))
    assert clean.files


def test_a_pipeline_from_s3_to_s3_on_a_cluster_equals_local(remote_data, tmp_path):
    """Two runs, new partitions in between: inputs, outputs and the state folder on S3,
    fits and writes on a local Dask cluster; the same as the same runs on disk."""
    from bigprep.pipeline import load_spec, run_pipeline
    from bigprep.pipeline.status import pipeline_status

    fs, endpoint, prefix, paths = remote_data
    storage = {"endpoint_url": endpoint}
    steps = ("steps:\n  - impute: {columns: {x: 'interpolate,ffill,median', s: 'bfill,mode'},"
             " group_by: g, order_by: t}\n  - tfidf: {text_column: body, keywords: 2}\n"
             "chunk_rows: 256\n")
    remote = tmp_path / "remote.yaml"
    remote.write_text(f"name: remote\ninput: s3://{prefix}/night/\n"
                      f"output: s3://{prefix}/piped/\nstate: s3://{prefix}/state/\n{steps}")
    local = tmp_path / "local.yaml"
    local.write_text(f"name: local\ninput: night/\noutput: piped/\nstate: state-local/\n{steps}")
    (tmp_path / "night").mkdir()
    names = [os.path.basename(p) for p in paths]
    with Executor(workers=2) as executor:
        for batch in (paths[:2], paths[2:]):
            fs.pipe_file(f"{prefix}/state/steps/1-impute.g2.json", b"left by a killed run")
            for p in batch:
                fs.put_file(p, f"{prefix}/night/{os.path.basename(p)}")
                os.link(p, tmp_path / "night" / os.path.basename(p))
            got = run_pipeline(load_spec(str(remote)), executor=executor,
                               storage_options=storage)
            want = run_pipeline(load_spec(str(local)))
            assert got.processed == want.processed == [os.path.basename(p) for p in batch]
    for name in names:
        with fs.open(f"{prefix}/piped/{name}") as fh:
            assert pl.read_parquet(fh).equals(pl.read_parquet(tmp_path / "piped" / name)), name
    fs.get(f"{prefix}/state", str(tmp_path / "state-remote"), recursive=True)
    ledgers = [json.loads((tmp_path / f"state-{k}" / "ledger.json").read_text())
               for k in ("remote", "local")]
    assert ledgers[0]["states"] == ledgers[1]["states"]
    assert sorted(os.listdir(tmp_path / "state-remote" / "steps")) == \
        sorted(os.listdir(tmp_path / "state-local" / "steps"))  # only the named states
    imputers = [bigprep.Imputer.load(str(tmp_path / f"state-{k}" / ledger["states"]["1-impute"]))
                for k, ledger in zip(("remote", "local"), ledgers)]
    assert imputers[0].statistics_ == imputers[1].statistics_
    tfidf = [bigprep.TfidfVectorizer.load(str(tmp_path / f"state-{k}" /
                                              ledger["states"]["2-tfidf"]))
             for k, ledger in zip(("remote", "local"), ledgers)]
    assert tfidf[0].vocabulary_ == tfidf[1].vocabulary_
    assert list(tfidf[0].idf_) == list(tfidf[1].idf_)
    status = pipeline_status(load_spec(str(remote)), {"endpoint_url": endpoint})
    assert status["partitions"]["done"] == len(names) and status["runs"] == 2
    assert "unknown" not in status["states"]["1-impute"]["age"]
