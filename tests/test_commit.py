"""Dataset-level commit: an output folder changes as a whole or not at all, holds
exactly what its manifest lists, and reads back the same with every reader."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from bigprep.cli import main
from bigprep.errors import BigprepError
from bigprep.io.commit import MANIFEST
from bigprep.io.dataset import iter_chunks, open_dataset
from tests.helpers import write_partitions


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def tree(folder) -> dict:
    """relative path -> sha256 of every file below ``folder``."""
    found = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as fh:
                found[os.path.relpath(path, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return found


def manifest_files(out) -> set:
    return {f["file"] for f in json.loads((out / MANIFEST).read_text())["files"]}


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    temp = rng.normal(20, 5, n)
    temp[rng.random(n) < 0.3] = np.nan
    frame = pl.DataFrame({"sensor": [f"s{i % 3}" for i in range(n)], "ts": list(range(n)),
                          "temp": temp})
    paths = write_partitions(frame, tmp_path / "in", [20, 20, 20])
    return frame, paths, tmp_path


def test_non_empty_out_needs_overwrite_which_replaces_it_whole(data):
    _, _, tmp = data
    out = tmp / "out"
    out.mkdir()
    (out / "stale.parquet").write_bytes(b"old")
    result = invoke("impute", tmp / "in", "--out", out)
    assert result.exit_code == 1
    assert "--overwrite" in result.output and "stale.parquet" in result.output
    assert tree(out) == {"stale.parquet": hashlib.sha256(b"old").hexdigest()}

    result = invoke("impute", tmp / "in", "--out", out, "--overwrite")
    assert result.exit_code == 0, result.output
    held = set(tree(out)) - {MANIFEST}
    assert "stale.parquet" not in held
    assert held == manifest_files(out) == {"part-0.parquet", "part-1.parquet",
                                           "part-2.parquet"}
    assert not [n for n in os.listdir(tmp) if ".bigprep" in n]  # no staging, no lock left


def test_the_same_run_again_rewrites_its_own_output_and_a_different_one_is_refused(data):
    _, _, tmp = data
    out = tmp / "out"
    assert invoke("impute", tmp / "in", "--out", out).exit_code == 0
    first = tree(out)
    again = invoke("impute", tmp / "in", "--out", out)
    assert again.exit_code == 0, again.output
    assert tree(out) == first
    other = invoke("impute", tmp / "in", "--out", out, "--strategy", "median")
    assert other.exit_code == 1 and "--overwrite" in other.output
    assert tree(out) == first


def test_update_adds_new_outputs_beside_the_earlier_ones(data):
    frame, paths, tmp = data
    out, state = tmp / "out", tmp / "s.json"
    assert invoke("impute", *paths[:2], "--out", out, "--state", state).exit_code == 0
    earlier = tree(out)
    result = invoke("impute", paths[2], "--out", out, "--state", state, "--update")
    assert result.exit_code == 0, result.output
    now = tree(out)
    assert {k: now[k] for k in earlier if k != MANIFEST} == {
        k: v for k, v in earlier.items() if k != MANIFEST}
    assert set(now) - {MANIFEST} == manifest_files(out) == {
        "part-0.parquet", "part-1.parquet", "part-2.parquet"}
    # a file no manifest lists is not mixed in silently
    (out / "foreign.parquet").write_bytes(b"x")
    frame.head(3).write_parquet(tmp / "more.parquet")
    refused = invoke("impute", tmp / "more.parquet", "--out", out, "--state", state,
                     "--update")
    assert refused.exit_code == 1 and "foreign.parquet" in refused.output
    assert invoke("impute", paths[0], "--out", out, "--update", "--overwrite",
                  "--state", state).exit_code == 2


def test_readers_see_exactly_the_published_rows(data):
    frame, _, tmp = data
    out = tmp / "out"
    assert invoke("impute", tmp / "in", "--out", out, "-c", "temp=mean").exit_code == 0
    expected = frame["temp"].fill_nan(None).fill_null(frame["temp"].fill_nan(None).mean())
    polars_rows = pl.read_parquet(out / "**/*.parquet").sort("ts")
    assert polars_rows["temp"].to_list() == pytest.approx(expected.to_list())
    pandas = pytest.importorskip("pandas")
    assert pandas.read_parquet(out).sort_values("ts")["temp"].tolist() == pytest.approx(
        expected.to_list())
    duckdb = pytest.importorskip("duckdb")
    got = duckdb.sql(f"select temp from read_parquet('{out}/**/*.parquet') order by ts")
    assert [r[0] for r in got.fetchall()] == pytest.approx(expected.to_list())


def test_outputs_carry_page_checksums_that_bigprep_verifies(data):
    _, _, tmp = data
    out = tmp / "out"
    assert invoke("impute", tmp / "in", "--out", out, "--compression", "none").exit_code == 0
    path = out / "part-0.parquet"
    meta = pq.ParquetFile(path).metadata
    column = meta.row_group(0).column(2)  # temp
    start = column.dictionary_page_offset or column.data_page_offset
    blob = bytearray(path.read_bytes())
    blob[start + column.total_compressed_size - 4] ^= 0xFF  # inside the page's values
    path.write_bytes(bytes(blob))
    result = invoke("impute", path, "--out", tmp / "again")
    assert result.exit_code == 1
    assert "part-0.parquet" in result.output and "damaged" in result.output
    assert not (tmp / "again").exists()


def test_a_file_changed_after_listing_stops_the_run(data):
    frame, paths, _ = data
    dataset = open_dataset([str(p) for p in paths])
    frame.head(5).write_parquet(paths[1])  # replaced after the footers were read
    list(iter_chunks(dataset.partitions[0], None))  # unchanged: reads
    with pytest.raises(BigprepError, match="changed while this run read it"):
        list(iter_chunks(dataset.partitions[1], None))


def _slow_impute(tmp, out, *extra):
    """A CLI run over many partitions, slow enough to be killed part way."""
    return [sys.executable, "-m", "bigprep", "impute", str(tmp / "many"), "--out", str(out),
            "--chunk-rows", "50", "-q", *extra]


@pytest.fixture
def many(tmp_path):
    rng = np.random.default_rng(1)
    n = 24_000
    temp = rng.normal(size=n)
    temp[rng.random(n) < 0.2] = np.nan
    frame = pl.DataFrame({"ts": np.arange(n), "temp": temp})
    write_partitions(frame, tmp_path / "many", [1000] * 24)
    return tmp_path


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("fraction", [0.15, 0.5, 0.9])
def test_a_killed_run_leaves_the_earlier_output_whole_and_a_rerun_ends_identical(
        many, sig, fraction):
    tmp = many
    reference, out = tmp / "reference", tmp / "out"
    start = time.monotonic()
    subprocess.run(_slow_impute(tmp, reference), check=True)
    duration = time.monotonic() - start
    subprocess.run(_slow_impute(tmp, out, "--strategy", "median"), check=True)
    earlier = tree(out)
    inputs = tree(tmp / "many")
    proc = subprocess.Popen(_slow_impute(tmp, out, "--overwrite"))
    time.sleep(duration * fraction)
    proc.send_signal(sig)
    code = proc.wait()
    after = tree(out)
    assert after in (earlier, tree(reference)), "a mix of two runs is visible"
    if sig != signal.SIGKILL:  # a clean stop: code 130 and nothing left behind
        assert code in (0, 130)
        assert not [n for n in os.listdir(tmp) if ".bigprep" in n]
    assert tree(tmp / "many") == inputs
    subprocess.run(_slow_impute(tmp, out, "--overwrite"), check=True)
    assert tree(out) == tree(reference)
    assert not [n for n in os.listdir(tmp) if ".bigprep" in n]


def test_two_writers_on_one_out_the_second_is_told_who_holds_it(many):
    tmp = many
    out = tmp / "out"
    # a fill in order over small chunks (each one transformed on its own): the first
    # still holds the lock when the second has started up
    first = subprocess.Popen(_slow_impute(tmp, out, "--chunk-rows", "5", "--column",
                                          "temp=ffill", "--order-by", "ts"))
    lock = tmp / ".out.bigprep.lock"
    deadline = time.monotonic() + 30
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    second = subprocess.run(_slow_impute(tmp, out, "--overwrite"), capture_output=True,
                            text=True, check=False)
    assert first.wait() == 0
    assert second.returncode == 1
    assert "another run is updating it" in second.stderr and "pid" in second.stderr
    assert set(tree(out)) - {MANIFEST} == manifest_files(out)
