"""The CLI on tiny files: output read back, clear errors, nothing lost."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from bigprep.cli import main
from bigprep.io.sink import write_partition
from tests.helpers import read_output, with_holes, write_partitions


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def data(tmp_path):
    frame = pl.DataFrame({
        "sensor": ["a", "b", "a", "b", "a", "b", "a", "b"],
        "ts": list(range(8)),
        "temp": [None, 1.0, 2.0, None, None, 5.0, 6.0, None],
        "status": ["ok", None, "ok", "bad", None, "bad", "bad", None],
        "empty": pl.Series([None] * 8, dtype=pl.Float64),
    })
    paths = write_partitions(frame, tmp_path / "in" / "day", [3, 3, 2])
    return frame, paths, tmp_path


def digest(paths):
    return [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths]


def test_impute_writes_mirrored_files_and_a_summary(data):
    _, paths, tmp = data
    before = digest(paths)
    result = invoke("impute", tmp / "in", "--out", tmp / "out", "-c", "temp=ffill,bfill",
                    "-c", "status=mode", "--group-by", "sensor", "--order-by", "ts",
                    "--add-indicator")
    assert result.exit_code == 0, result.output
    out = read_output(tmp / "out" / "day", paths)
    assert out["temp"].to_list() == [2.0, 1.0, 2.0, 1.0, 2.0, 5.0, 6.0, 5.0]
    assert out["status"].to_list() == ["ok", "bad", "ok", "bad", "bad", "bad", "bad", "bad"]
    assert out["temp__missing"].sum() == 4
    assert "nulls filled" in result.stderr and "temp" in result.stderr
    assert digest(paths) == before  # inputs untouched
    manifest = json.loads((tmp / "out" / "_bigprep_manifest.json").read_text())
    assert [f["rows"] for f in manifest["files"]] == [3, 3, 2]


@pytest.mark.parametrize("args, words", [
    (["-c", "nope=mean"], ["'nope'", "not in the data"]),
    (["-c", "status=mean"], ["status", "numeric", "mode"]),
    (["-c", "empty=median"], ["'empty'", "every value is null", "constant"]),
    (["-c", "temp=sideways"], ["unknown strategy", "sideways"]),
    (["-c", "ts=constant:soon"], ["'soon'", "Int64"]),
    (["-c", "temp=ffill", "--order-by", "status"], ["--order-by", "numbers"]),
    (["-c", "temp=ffill", "--group-by", "missing"], ["--group-by", "'missing'"]),
])
def test_bad_options_stop_with_one_clear_message_and_write_nothing(data, args, words):
    _, _, tmp = data
    result = invoke("impute", tmp / "in", "--out", tmp / "out", *args)
    usage = "unknown strategy" in words  # a malformed value: a usage error, exit 2
    assert result.exit_code == (2 if usage else 1)
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.stderr
    assert not (tmp / "out").exists()


def test_schema_drift_names_the_file_and_column(data):
    _, _, tmp = data
    pq.write_table(pa.table({"sensor": ["a"], "ts": [9], "temp": ["hot"], "status": ["ok"],
                             "empty": pa.array([None], pa.float64())}),
                   tmp / "in" / "day" / "part-9.parquet")
    result = invoke("impute", tmp / "in", "--out", tmp / "out")
    assert result.exit_code == 1
    assert "part-9.parquet" in result.stderr and "'temp'" in result.stderr
    assert "schema drift" in result.stderr
    assert not (tmp / "out").exists()


def test_corrupt_file_empty_glob_and_out_inside_inputs(data):
    _, paths, tmp = data
    (tmp / "in" / "day" / "part-5.parquet").write_bytes(b"not parquet at all")
    result = invoke("impute", tmp / "in", "--out", tmp / "out")
    assert result.exit_code == 1 and "part-5.parquet" in result.stderr
    assert "not a readable Parquet file" in result.stderr
    os.remove(tmp / "in" / "day" / "part-5.parquet")
    result = invoke("impute", str(tmp / "nowhere" / "*.parquet"), "--out", tmp / "out")
    assert result.exit_code == 1 and "matches no file" in result.stderr
    result = invoke("impute", tmp / "in", "--out", tmp / "in")
    assert result.exit_code == 1 and "holds input file" in result.stderr
    os.makedirs(tmp / "in" / "day" / "x", exist_ok=True)
    result = invoke("impute", paths[0], "--out", tmp / "in")
    assert result.exit_code == 1 and "--out" in result.stderr
    assert not (tmp / "out").exists()


def test_order_by_decrease_names_file_and_row(tmp_path):
    frame = pl.DataFrame({"ts": [1, 2, 3, 2, 5], "x": [1.0, None, 3.0, None, 5.0]})
    paths = write_partitions(frame, tmp_path / "in", [3, 2])
    result = invoke("impute", *paths, "--out", tmp_path / "out", "-c", "x=ffill",
                    "--order-by", "ts")
    assert result.exit_code == 1
    assert "part-1.parquet, row 0" in result.stderr and "decreases" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_failed_write_leaves_no_file(tmp_path):
    def frames():
        yield pl.DataFrame({"x": [1, 2]})
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_partition(str(tmp_path / "o" / "a.parquet"), frames(), pl.Schema({"x": pl.Int64}))
    assert os.listdir(tmp_path / "o") == []


def test_state_update_equals_fitting_everything(tmp_path, rng):
    n = 400
    frame = pl.DataFrame({
        "g": rng.choice(["a", "b"], n),
        "x": pl.Series(rng.normal(size=n)).scatter(np.flatnonzero(rng.random(n) < .3), None),
        "m": pl.Series(rng.normal(size=n)).scatter(np.flatnonzero(rng.random(n) < .3), None),
        "s": pl.Series(rng.choice(["u", "v"], n)).scatter([0, 5, 399], None),
    })
    old = write_partitions(frame.head(300), tmp_path / "old", [100, 200])
    new = write_partitions(frame.tail(100), tmp_path / "new", [40, 60])
    allp = write_partitions(frame, tmp_path / "all", [100, 200, 40, 60])
    opts = ["-c", "x=mean", "-c", "m=median", "-c", "s=ffill", "--group-by", "g", "-q"]
    state = tmp_path / "state.json"
    assert invoke("impute", *old, "--out", tmp_path / "o1", "--state", state, *opts).exit_code == 0
    result = invoke("impute", *new, "--out", tmp_path / "o2", "--state", state, "--update",
                    "--group-by", "g", "-q")
    assert result.exit_code == 0, result.output
    assert invoke("impute", *allp, "--out", tmp_path / "o3", "--state", tmp_path / "all.json",
                  *opts).exit_code == 0
    saved, full = json.loads(state.read_text()), json.loads((tmp_path / "all.json").read_text())
    assert saved["updates"] == 1
    saved, full = saved["payload"], full["payload"]
    assert saved["rows"] == full["rows"] == n
    assert saved["columns"]["x"]["mean"]["value"] == pytest.approx(full["columns"]["x"]["mean"]
                                                                   ["value"], rel=1e-12)
    assert saved["columns"]["m"]["median"]["value"] == full["columns"]["m"]["median"]["value"]
    # the new partitions carry on filling from where the old ones ended
    assert read_output(tmp_path / "o2", new).equals(read_output(tmp_path / "o3", allp).tail(100))


def test_update_refuses_a_missing_state_or_new_strategies(data):
    _, _, tmp = data
    result = invoke("impute", tmp / "in", "--out", tmp / "o", "--state", tmp / "s.json",
                    "--update")
    assert result.exit_code == 1 and "Run once without --update" in result.stderr
    assert invoke("impute", tmp / "in", "--state", tmp / "s.json", "-q").exit_code == 0
    result = invoke("impute", tmp / "in", "--out", tmp / "o", "--state", tmp / "s.json",
                    "--update", "--strategy", "median")
    assert result.exit_code == 1 and "saved state" in result.stderr


def test_profile_counts_null_runs_across_files(data):
    _, _, tmp = data
    result = invoke("profile", tmp / "in", "--json")
    assert result.exit_code == 0, result.output
    prof = json.loads(result.stdout)
    assert prof["rows"] == 8
    assert prof["columns"]["temp"]["nulls_per_partition"] == [1, 2, 1]
    assert prof["columns"]["temp"]["longest_null_run"] == 2  # rows 3-4 span two files
    assert prof["columns"]["empty"]["longest_null_run"] == 8
    assert "temp" in invoke("profile", tmp / "in").stdout


@pytest.mark.parametrize("command", [[], ["impute"], ["profile"]])
def test_every_command_has_help_with_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Example:" in result.output


def test_apply_fills_with_a_saved_state_and_learns_nothing(data):
    frame, paths, tmp = data
    state = tmp / "s.json"
    opts = ["-c", "temp=ffill,mean", "-c", "status=mode", "--group-by", "sensor", "-q"]
    assert invoke("impute", *paths[:2], "--state", state, *opts).exit_code == 0
    saved = state.read_bytes()
    result = invoke("impute", paths[2], "--out", tmp / "o", "--state", state, "--apply",
                    "--group-by", "sensor", "-q")
    assert result.exit_code == 0, result.output
    assert state.read_bytes() == saved  # the state is not changed
    out = pl.read_parquet(tmp / "o" / "part-2.parquet")
    # rows 6, 7 of sensors a, b: b's null temp is carried in from row 5 (5.0), learned before
    assert out["temp"].to_list() == [6.0, 5.0]
    fitted = frame.head(6)
    assert out["status"].to_list() == ["bad", fitted["status"].drop_nulls().mode().sort()[0]]
    for bad in (["--strategy", "mean"], ["--update"]):
        result = invoke("impute", paths[2], "--out", tmp / "o2", "--state", state, "--apply",
                        *bad)
        assert result.exit_code != 0 and "Traceback" not in result.output


def test_a_run_killed_between_the_state_files_leaves_the_previous_state(data, monkeypatch):
    """The sidecar is written first under its content hash, the JSON last: a crash in
    between leaves the old JSON naming its old sidecar, which is still there."""
    from bigprep.io import statefile

    _, paths, tmp = data
    state = tmp / "s.json"
    assert invoke("impute", *paths[:2], "--state", state, "-c", "temp=median", "-q").exit_code == 0
    before = {p.name: p.read_bytes() for p in tmp.iterdir() if p.name.startswith("s.json")}

    def crash(*args, **kwargs):
        raise OSError("killed")
    monkeypatch.setattr(statefile, "write_json_atomic", crash)
    result = invoke("impute", paths[2], "--state", state, "--update", "-q")
    assert result.exit_code != 0
    monkeypatch.undo()
    assert invoke("impute", paths[2], "--out", tmp / "o", "--state", state, "--apply",
                  "-q").exit_code == 0  # the previous state loads and applies
    assert json.loads(state.read_text())["updates"] == 0
    for name, content in before.items():
        assert (tmp / name).read_bytes() == content
    result = invoke("impute", paths[2], "--state", state, "--update", "-q")
    assert result.exit_code == 0, result.output
    left = sorted(p.name for p in tmp.iterdir() if p.name.startswith("s.json"))
    assert left == ["s.json", json.loads(state.read_text())["sidecar"]]  # old ones removed


def _lock_of(state, pid):
    import socket

    state.with_name(state.name + ".lock").write_text(json.dumps(
        {"pid": pid, "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}))


def test_a_second_writer_is_stopped_and_a_stale_lock_taken_over(data):
    import subprocess
    import sys
    import time

    _, paths, tmp = data
    state = tmp / "s.json"
    assert invoke("impute", paths[0], "--state", state, "-c", "temp=mean", "-q").exit_code == 0
    saved = state.read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock_of(state, holder.pid)
        result = invoke("impute", paths[1], "--state", state, "--update", "-q")
        assert result.exit_code == 1 and f"pid {holder.pid}" in result.stderr
        assert "--state" in result.stderr and state.read_bytes() == saved
        holder.kill()  # killed, not yet reaped: its pid still answers, but it is gone
        stat = Path(f"/proc/{holder.pid}/stat")
        for _ in range(100):
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.05)
        _lock_of(state, holder.pid)
        result = invoke("impute", paths[1], "--state", state, "--update", "-q")
        assert result.exit_code == 0, result.output
        assert f"taking over {state}.lock, left by pid {holder.pid}" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    _lock_of(state, holder.pid)  # its run is gone and reaped: the lock is stale
    result = invoke("impute", paths[2], "--state", state, "--update", "-q")
    assert result.exit_code == 0, result.output
    assert f"left by pid {holder.pid}" in result.stderr
    assert not state.with_name("s.json.lock").exists()
    assert json.loads(state.read_text())["payload"]["rows"] == 8


def test_two_runs_updating_one_state_at_once_lose_nothing(tmp_path, rng):
    """Whatever the timing, every run that says it succeeded is counted once."""
    import subprocess
    import sys

    frame = pl.DataFrame({"x": with_holes(rng, rng.normal(size=600_000))})
    parts = write_partitions(frame, tmp_path / "in", [200_000] * 3)
    state = tmp_path / "s.json"
    assert invoke("impute", parts[0], "--state", state, "-c", "x=mean", "-q").exit_code == 0
    runs = [subprocess.Popen([sys.executable, "-m", "bigprep", "impute", p, "--state", state,
                              "--update", "-q"], stderr=subprocess.PIPE, text=True)
            for p in parts[1:]]
    results = [(r.wait(), r.stderr.read()) for r in runs]
    ok = sum(code == 0 for code, _ in results)
    assert ok >= 1
    for code, err in results:
        assert code == 0 or "another run is updating it" in err, err
    assert json.loads(state.read_text())["payload"]["rows"] == 200_000 * (1 + ok)
