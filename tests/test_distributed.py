"""The same job on a real Dask distributed cluster (processes on loopback)."""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from distributed import LocalCluster

from bigprep import Executor
from bigprep.cli import main
from tests.helpers import impute, read_output, with_holes, write_partitions


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
    from bigprep import TfidfVectorizer

    docs = ["the quick brown fox", None, "lazy dogs and quick cats", "fox fox dog"] * 25
    paths = write_partitions(pl.DataFrame({"id": range(100), "body": docs}), tmp_path / "in",
                             [30, 30, 40])
    local = TfidfVectorizer(chunk_rows=16).fit(paths, text_column="body")
    with Executor(cluster.scheduler_address) as executor:
        remote = TfidfVectorizer(chunk_rows=16, executor=executor).fit(paths,
                                                                        text_column="body")
        remote.transform(paths, out=str(tmp_path / "r"), keywords=2)
    local.transform(paths, out=str(tmp_path / "l"), keywords=2)
    assert remote.state_.counts.counts.sort("__bp_term").equals(
        local.state_.counts.counts.sort("__bp_term"))
    assert read_output(tmp_path / "r", paths).equals(read_output(tmp_path / "l", paths))


def test_workers_option_starts_a_local_cluster_with_the_same_output(data, tmp_path):
    runner = CliRunner()
    args = ["impute", *data, "--strategy", "median", "-c", "s=ffill", "--group-by", "g"]
    local = runner.invoke(main, [*args, "--out", str(tmp_path / "a"), "-q"])
    remote = runner.invoke(main, [*args, "--out", str(tmp_path / "b"), "--workers", "2"])
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    assert "Dask cluster: tcp://127.0.0.1" in remote.stderr and "dashboard" in remote.stderr
    assert read_output(tmp_path / "a", data).equals(read_output(tmp_path / "b", data))
    both = runner.invoke(main, [*args, "--out", str(tmp_path / "c"), "--workers", "2",
                                "--scheduler", "tcp://127.0.0.1:1"])
    assert both.exit_code == 1 and "give one of them" in both.stderr


def test_fitted_states_are_small_messages(tmp_path, rng, cluster):
    import pickle

    from bigprep.io.dataset import open_dataset
    from bigprep.ops.base import fit
    from bigprep.ops.impute.operation import Impute

    n = 300_000
    frame = pl.DataFrame({"g": rng.choice(["a", "b", "c"], n),
                          "x": with_holes(rng, rng.normal(size=n)),
                          "s": with_holes(rng, rng.choice(["u", "v", "w"], n))})
    paths = write_partitions(frame, tmp_path / "in", [50_000] * 6)
    dataset = open_dataset(paths)
    op = Impute({"columns": {"x": "mean,interpolate", "s": "mode,ffill"}, "group_by": "g",
                 "chunk_rows": 16_384})
    with Executor(cluster.scheduler_address) as executor:
        state = fit(op, dataset, executor)
    data_bytes = sum(os.path.getsize(p) for p in paths)
    message = len(pickle.dumps(state)) + len(pickle.dumps(state.seeds))
    assert message < data_bytes / 20  # summaries per chunk and group, never rows


def test_losing_a_worker_mid_run_loses_and_duplicates_nothing(tmp_path, rng):
    import os as _os
    import signal
    import threading
    import time

    n = 600_000
    frame = pl.DataFrame({"g": rng.integers(0, 50, n), "x": with_holes(rng, rng.normal(size=n)),
                          "y": with_holes(rng, rng.normal(size=n))})
    paths = write_partitions(frame, tmp_path / "in", [10_000] * 60)
    options = {"columns": {"x": "interpolate,ffill", "y": "median"}, "group_by": "g"}
    clean = impute(paths, str(tmp_path / "clean"), chunk_rows=2048, **options)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as c, Executor(c.scheduler_address) as executor:
        killed = []
        pids = list(executor.client().run(_os.getpid).values())

        def kill_one_worker_once_writing_starts():
            deadline = time.time() + 120
            while time.time() < deadline and not killed:
                if (tmp_path / "out").exists() and any((tmp_path / "out").iterdir()):
                    _os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                time.sleep(0.002)

        killer = threading.Thread(target=kill_one_worker_once_writing_starts)
        killer.start()
        impute(paths, str(tmp_path / "out"), chunk_rows=2048, executor=executor, **options)
        killer.join()
    assert killed, "the run ended before a worker could be killed"
    assert read_output(tmp_path / "out", paths).equals(read_output(tmp_path / "clean", paths))
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if "bigprep-tmp" in p.name]
    assert leftovers == [] and clean.files
