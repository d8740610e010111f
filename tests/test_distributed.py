"""The same job on a real Dask distributed cluster (processes on loopback)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from distributed import LocalCluster

from bigprep.cli import main
from bigprep.executor import Executor
from bigprep.impute.job import impute
from tests.helpers import read_output, with_holes, write_partitions


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as c:
        yield c


@pytest.fixture
def data(tmp_path, rng):
    n = 3000
    frame = pl.DataFrame({"g": rng.choice(["a", "b", "c"], n), "t": np.arange(n),
                          "x": with_holes(rng, rng.normal(size=n)),
                          "k": with_holes(rng, rng.integers(0, 9, n)),
                          "s": with_holes(rng, rng.choice(["u", "v"], n))})
    return write_partitions(frame, tmp_path / "in", [500] * 6, row_group_size=200)


@pytest.mark.parametrize("options", [
    {"strategy": "median"},
    {"columns": {"x": "interpolate,ffill", "k": "mean", "s": "bfill"}, "group_by": "g",
     "order_by": "t"},
])
def test_cluster_output_equals_local_output(cluster, data, tmp_path, options):
    local = impute(data, str(tmp_path / "local"), chunk_rows=128, **options)
    with Executor(cluster.scheduler_address) as executor:
        remote = impute(data, str(tmp_path / "remote"), chunk_rows=128, executor=executor,
                        **options)
    assert read_output(tmp_path / "local", data).equals(read_output(tmp_path / "remote", data))
    assert [f["left"] for f in local.files] == [f["left"] for f in remote.files]


def test_cli_scheduler_option_and_environment(cluster, data, tmp_path, monkeypatch):
    runner = CliRunner()
    args = ["impute", *data, "--strategy", "mode", "-q"]
    first = runner.invoke(main, [*args, "--out", str(tmp_path / "a"), "--scheduler",
                                 cluster.scheduler_address])
    assert first.exit_code == 0, first.output
    monkeypatch.setenv("BIGPREP_SCHEDULER", cluster.scheduler_address)
    second = runner.invoke(main, [*args, "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    assert read_output(tmp_path / "a", data).equals(read_output(tmp_path / "b", data))


def test_errors_on_workers_reach_the_user_clearly(cluster, tmp_path):
    frame = pl.DataFrame({"t": [3, 2, 1], "x": [1.0, None, 2.0]})
    paths = write_partitions(frame, tmp_path / "in", [3])
    result = CliRunner().invoke(main, ["impute", *paths, "--out", str(tmp_path / "o"),
                                       "-c", "x=ffill", "--order-by", "t", "--scheduler",
                                       cluster.scheduler_address])
    assert result.exit_code == 1 and "decreases" in result.stderr


def test_tfidf_on_the_cluster_equals_local(cluster, tmp_path):
    from bigprep.text import tfidf as tf

    docs = ["the quick brown fox", None, "lazy dogs and quick cats", "fox fox dog"] * 25
    paths = write_partitions(pl.DataFrame({"id": range(100), "body": docs}), tmp_path / "in",
                             [30, 30, 40])
    local = tf.fit(paths, text_column="body", chunk_rows=16)
    with Executor(cluster.scheduler_address) as executor:
        remote = tf.fit(paths, text_column="body", chunk_rows=16, executor=executor)
        tf.transform(remote, paths, str(tmp_path / "r"), keywords=2, executor=executor)
    tf.transform(local, paths, str(tmp_path / "l"), keywords=2)
    assert remote.docs.counts.sort("__bp_term").equals(local.docs.counts.sort("__bp_term"))
    assert read_output(tmp_path / "r", paths).equals(read_output(tmp_path / "l", paths))
