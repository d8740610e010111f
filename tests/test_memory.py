"""Bounded memory, proven: impute data several times larger than a memory cap.

The run is a subprocess. Where this machine lets us (root with cgroup v1 or v2
memory control), it runs inside a cgroup with a hard memory limit, so going over
means being killed; everywhere, its own peak RSS (``wait4``) must stay under the
cap. The data is generated at about 1.5 GB in memory (Arrow), over 3x the cap.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

CAP_MB = 450
ROWS, FILES, COLUMNS = 32_000_000, 64, 5


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    per = ROWS // FILES
    arrow_bytes = 0
    for k in range(FILES):
        table = pa.table({"g": rng.integers(0, 20, per), **{
            f"c{c}": pa.array(rng.normal(size=per), mask=rng.random(per) < 0.2)
            for c in range(COLUMNS)}})
        arrow_bytes += table.nbytes
        pq.write_table(table, folder / f"part-{k}.parquet", row_group_size=100_000,
                       compression="snappy")
    assert arrow_bytes > 3 * CAP_MB * 2**20, "the data must be several times the cap"
    return folder


def _cgroup(limit_bytes: int) -> str | None:
    """A fresh memory cgroup with a hard limit, or None where we may not make one."""
    name = f"bigprep-test-{uuid.uuid4().hex[:8]}"
    for root, limit_file in (("/sys/fs/cgroup/memory", "memory.limit_in_bytes"),
                             ("/sys/fs/cgroup", "memory.max")):
        path = os.path.join(root, name)
        try:
            os.mkdir(path)
            with open(os.path.join(path, limit_file), "w") as fh:
                fh.write(str(limit_bytes))
            return path
        except OSError:
            if os.path.isdir(path):
                os.rmdir(path)
    return None


# The peak RSS must be the command's own: ru_maxrss after fork+exec starts from the
# parent's (this test process's) high-water mark, so the child reports VmHWM itself.
REPORT_PEAK = """
import os, runpy, sys
try:
    runpy.run_module("bigprep", run_name="__main__")
finally:
    with open("/proc/self/status") as fh:
        peak = next(line.split()[1] for line in fh if line.startswith("VmHWM"))
    with open(os.environ["PEAK_FILE"], "w") as out:
        out.write(peak)
"""


def run_capped(args: list[str], log, peak_file) -> tuple[int, float, bool]:
    """Run ``python -m bigprep ARGS`` under the cap: (exit code, peak RSS MB, cgroup used)."""
    group = _cgroup(CAP_MB * 2**20)
    command = [sys.executable, "-c", REPORT_PEAK, *args]
    if group:  # the shell joins the cgroup, then becomes the command
        procs = shlex.quote(os.path.join(group, "cgroup.procs"))
        command = ["sh", "-c", f"echo $$ > {procs} && exec {shlex.join(command)}"]
    with open(log, "w") as err:
        code = subprocess.call(command, stderr=err, env={**os.environ, "PEAK_FILE": str(peak_file)})
    if group:
        os.rmdir(group)
    peak_kb = int(peak_file.read_text()) if peak_file.exists() else 0
    return code, peak_kb / 1024, group is not None


@pytest.mark.parametrize("options", [["--strategy", "mean"], ["--strategy", "median"],
                                     ["--strategy", "interpolate,ffill", "--group-by", "g"]],
                         ids=["mean", "median", "ffill"])
def test_impute_runs_in_bounded_memory(big, tmp_path, options):
    out = tmp_path / "out"
    log = tmp_path / "stderr.txt"
    code, peak_mb, capped = run_capped(
        ["impute", str(big), "--out", str(out), "-q", "--chunk-rows", "65536",
         "--compression", "snappy", *options], log, tmp_path / "peak")
    assert code == 0, (f"impute failed or was killed under a {CAP_MB} MB cap "
                       f"(cgroup: {capped}): {log.read_text()[-2000:]}")
    assert peak_mb < CAP_MB, f"peak RSS {peak_mb:.0f} MB over the {CAP_MB} MB cap"
    written = sum(pq.ParquetFile(f).metadata.num_rows for f in out.glob("*.parquet"))
    assert written == ROWS
