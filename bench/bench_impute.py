"""Time bigprep impute against a copy floor and its peers, each in its own process.

Usage::

    python bench/bench_impute.py                        # 20M rows, 32 files, in a temp dir
    python bench/bench_impute.py --rows 200000 --files 8   # smoke test, seconds
    python bench/bench_impute.py --data /tmp/sensors20m --json results.json

Every row of the result is one subprocess run by ``measure``: wall time and that
process's own peak RSS (its VmHWM, polled while it runs). The floor is the faster of two
plain copies of the same files (polars scan/sink, pyarrow read/write); ratios are to
it, because on a shared machine only ratios taken in one run compare.

Peers run the same tasks with their usual idioms; this script runs them itself as
``python bench_impute.py worker JOB OUT_DIR FILE...``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GENERATE = REPO / "sample_data" / "generate.py"

# Columns of sample_data/generate.py that mean and median fill (numeric, with nulls).
NUMERIC = ["temp", "humidity", "pressure", "wind", "voltage", "battery", "reading_count"]
INTERPOLATE = ["temp", "humidity"]  # then ffill, per sensor, ordered by ts
FFILL = ["pressure"]
GROUP, ORDER = "sensor_id", "ts"
IN_MEMORY_MAX_ROWS = 5_000_000
VERSIONED = ["bigprep", "polars", "pyarrow", "dask", "pandas", "scikit-learn", "numpy"]

BIGPREP_TASKS = {
    "mean": ["--strategy", "mean"],
    "median": ["--strategy", "median"],
    "ffill": ["--column", "temp=interpolate,ffill", "--column", "humidity=interpolate,ffill",
              "--column", "pressure=ffill", "--group-by", GROUP, "--order-by", ORDER],
}


# --------------------------------------------------------------------------------------
# Peer jobs: each runs in a fresh process as `worker JOB OUT_DIR FILE...`.
# Imports are inside the jobs so a process loads only the library it measures.


def polars_copy(files, out):
    import polars as pl

    for f in files:
        pl.scan_parquet(f).sink_parquet(out / Path(f).name)


def pyarrow_copy(files, out):
    import pyarrow.parquet as pq

    for f in files:
        pq.write_table(pq.read_table(f), out / Path(f).name, compression="zstd")


def _polars_fill(pl, schema, fill_value):
    """fill_null expressions that keep each column's type (integers get a rounded value)."""
    exprs = []
    for c in NUMERIC:
        value = fill_value(c)
        if schema[c].is_integer():
            value = value.round(0)
        exprs.append(pl.col(c).fill_null(value).cast(schema[c]))
    return exprs


def _polars_two_pass(files, out, stat):
    import polars as pl

    stats = (pl.scan_parquet(files).select(getattr(pl.col(c), stat)() for c in NUMERIC)
             .collect(engine="streaming").row(0, named=True))
    schema = pl.scan_parquet(files[0]).collect_schema()
    for f in files:
        fills = _polars_fill(pl, schema, lambda c: pl.lit(stats[c], pl.Float64))
        pl.scan_parquet(f).with_columns(fills).sink_parquet(out / Path(f).name)


def polars_two_pass_mean(files, out):
    _polars_two_pass(files, out, "mean")


def polars_two_pass_median(files, out):
    _polars_two_pass(files, out, "median")


def polars_one_query_mean(files, out):
    import polars as pl

    lf = pl.scan_parquet(files)
    fills = _polars_fill(pl, lf.collect_schema(), lambda c: pl.col(c).mean())
    lf.with_columns(fills).sink_parquet(out / "all.parquet")


def polars_ffill(files, out):
    import polars as pl

    interpolated = [pl.col(c).interpolate_by(ORDER).forward_fill().over(GROUP)
                    for c in INTERPOLATE]
    filled = [pl.col(c).forward_fill().over(GROUP) for c in FFILL]
    pl.scan_parquet(files).with_columns(*interpolated, *filled).sink_parquet(out / "all.parquet")


def _dask_fill(files, out, stat):
    import dask.dataframe as dd

    df = dd.read_parquet(files)
    df = df.fillna(getattr(df[NUMERIC], stat)())
    # Integer columns with nulls arrive as float64 while dask's meta says int64, so
    # to_parquet rejects the filled floats: round and cast them back, as the others do.
    ints = {c: df[c].dtype for c in NUMERIC if df[c].dtype.kind in "iu"}
    df = df.assign(**{c: df[c].round().astype(t) for c, t in ints.items()})
    df.to_parquet(out, compression="zstd")


def dask_mean(files, out):
    _dask_fill(files, out, "mean")


def dask_median(files, out):
    _dask_fill(files, out, "median_approximate")


def dask_ffill(files, out):
    """The idiom as users write it: fill per group, assign back. dask has no grouped
    interpolate, so forward fill only."""
    import dask.dataframe as dd

    df = dd.read_parquet(files)
    cols = INTERPOLATE + FFILL
    df = df.assign(**{c: df.groupby(GROUP)[c].ffill() for c in cols})
    df.to_parquet(out, compression="zstd")


def dask_shuffle_ffill(files, out):
    """What works: shuffle whole rows by group, then pandas ffill per partition. The
    shuffle must be "tasks": the local default ("disk") does not keep row order within a
    group, so groupby().ffill() fills from the wrong rows (dask#10034)."""
    import dask
    import dask.dataframe as dd

    cols = INTERPOLATE + FFILL

    def fill(part):
        return part.assign(**{c: part.groupby(GROUP)[c].ffill() for c in cols})

    with dask.config.set({"dataframe.shuffle.method": "tasks"}):
        df = dd.read_parquet(files).shuffle(GROUP)
        df.map_partitions(fill).to_parquet(out, compression="zstd")


def _pandas_sklearn(files, out, strategy):
    import pandas as pd
    from sklearn.impute import SimpleImputer

    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    df[NUMERIC] = SimpleImputer(strategy=strategy).fit_transform(df[NUMERIC])
    df.to_parquet(out / "all.parquet", compression="zstd")


def pandas_sklearn_mean(files, out):
    _pandas_sklearn(files, out, "mean")


def pandas_sklearn_median(files, out):
    _pandas_sklearn(files, out, "median")


def pandas_ffill(files, out):
    import pandas as pd

    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    by_ts = df.set_index(ORDER).groupby(GROUP)
    for c in INTERPOLATE:  # linear in ts; pandas carries the last value past the end
        df[c] = by_ts[c].transform(lambda s: s.interpolate(method="index").ffill()).to_numpy()
    for c in FFILL:
        df[c] = df.groupby(GROUP)[c].ffill()
    df.to_parquet(out / "all.parquet", compression="zstd")


JOBS = {f.__name__: f for f in [
    polars_copy, pyarrow_copy, polars_two_pass_mean, polars_two_pass_median,
    polars_one_query_mean, polars_ffill, dask_mean, dask_median, dask_ffill,
    dask_shuffle_ffill,
    pandas_sklearn_mean, pandas_sklearn_median, pandas_ffill,
]}


# --------------------------------------------------------------------------------------
# Measuring


def vm_hwm_kib(pid: int) -> int:
    """Peak resident memory of a running process (KiB), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(line.split()[1]) for line in fh if line.startswith("VmHWM")), 0)
    except OSError:
        return 0



@contextmanager
def scratch_dir(work: Path | None, name: str) -> Iterator[Path]:
    """A fresh scratch folder (below ``work`` when given), removed afterwards."""
    if work:
        work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=work))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

def measure(cmd, *, timeout, mem_cap_gb=None, cwd=REPO):
    """Run cmd; return its wall seconds, its own peak RSS in GiB, exit code and error."""
    cap = None
    if mem_cap_gb:  # set in the child between fork and exec: one C call, no Python state
        limit = int(mem_cap_gb * 2**30)
        cap = functools.partial(resource.setrlimit, resource.RLIMIT_AS, (limit, limit))
    with tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True, preexec_fn=cap)  # noqa: PLW1509
        timed_out = False
        peak_kib = 0  # the child's own high-water mark: ru_maxrss after fork+exec starts
        while True:   # from the parent's, so poll VmHWM (per address space) instead
            peak_kib = max(peak_kib, vm_hwm_kib(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - began > timeout:
                os.killpg(proc.pid, signal.SIGKILL)  # the child's own session
                timed_out = True
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - began
        proc.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        lines = [line.strip() for line in err.read().decode(errors="replace").splitlines()]
    # The line that says most: the last one naming an error, else the last one.
    said = next((line for line in reversed(lines) if "rror" in line or "panicked" in line),
                next((line for line in reversed(lines) if line), ""))[:160]
    error = None
    if timed_out:
        error = f"timed out after {timeout:g} s"
    elif code < 0:
        error = f"killed by {signal.Signals(-code).name}"
        if -code == signal.SIGKILL:
            error += " (out of memory?)"
        error += f": {said}" if said else ""
    elif code:
        error = f"exit {code}: {said or 'no message'}"
    return {"seconds": seconds, "peak_rss_gib": (peak_kib or usage.ru_maxrss) / 2**20,
            "exit_code": code, "error": error}


def parquet_rows(paths) -> int:
    """Rows in these Parquet files, from their footers."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in paths)


IN_MEMORY_TOOLS = {"pandas + sklearn", "pandas groupby"}


def plan(files, in_memory):
    """(task, tool, command factory) for every row, in the order they run."""
    def worker(job):
        return lambda out: [sys.executable, str(Path(__file__).resolve()), "worker", job,
                            str(out), *files]

    def bigprep(task):
        return lambda out: [sys.executable, "-m", "bigprep", "impute", *files, "--out",
                            str(out), "--quiet", *BIGPREP_TASKS[task]]

    rows = [
        ("copy", "polars scan/sink per file", worker("polars_copy")),
        ("copy", "pyarrow read/write per file", worker("pyarrow_copy")),
        ("mean", "bigprep", bigprep("mean")),
        ("mean", "polars two passes", worker("polars_two_pass_mean")),
        ("mean", "polars one query", worker("polars_one_query_mean")),
        ("mean", "dask.dataframe", worker("dask_mean")),
        ("mean", "pandas + sklearn", worker("pandas_sklearn_mean")),
        ("median", "bigprep", bigprep("median")),
        ("median", "polars two passes", worker("polars_two_pass_median")),
        ("median", "dask.dataframe", worker("dask_median")),
        ("median", "pandas + sklearn", worker("pandas_sklearn_median")),
        ("ffill", "bigprep", bigprep("ffill")),
        ("ffill", "polars over(sensor_id)", worker("polars_ffill")),
        ("ffill", "dask groupby().ffill()", worker("dask_ffill")),
        ("ffill", "dask shuffle + ffill", worker("dask_shuffle_ffill")),
        ("ffill", "pandas groupby", worker("pandas_ffill")),
    ]
    return [row for row in rows if in_memory or row[1] not in IN_MEMORY_TOOLS]


NOTES = {
    "polars one query": "one output file; not streaming",
    "dask.dataframe/mean": "ints rounded and cast back",
    "dask.dataframe/median": "median_approximate; ints rounded and cast back",
    "dask groupby().ffill()": "ffill only (no grouped interpolate), assigned back",
    "dask shuffle + ffill": "tasks shuffle, pandas ffill per partition; ffill only; "
                            "rows regrouped",
    "polars over(sensor_id)": "interpolate_by(ts); one output file",
    "pandas groupby": "interpolate(method=index); in memory",
    "pandas + sklearn": "SimpleImputer, in memory",
}


def run_all(files, input_rows, out, args):
    results = []
    for task, tool, command in plan(files, args.in_memory_peers or
                                    input_rows <= IN_MEMORY_MAX_ROWS):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        print(f"running {task} / {tool} ...", file=sys.stderr, flush=True)
        result = {"task": task, "tool": tool,
                  **measure(command(out), timeout=args.timeout, mem_cap_gb=args.mem_cap_gb)}
        notes = [NOTES.get(f"{tool}/{task}") or NOTES.get(tool, "")]
        if result["error"]:
            notes.insert(0, f"FAILED, {result['error']}")
        else:
            written = parquet_rows(out.rglob("*.parquet"))
            result["rows_ok"] = written == input_rows
            notes.append("rows ok" if result["rows_ok"]
                         else f"ROW COUNT {written:,} != {input_rows:,}")
        result["note"] = "; ".join(n for n in notes if n)
        results.append(result)
    shutil.rmtree(out, ignore_errors=True)
    copies = [r["seconds"] for r in results if r["task"] == "copy" and not r["error"]]
    floor = min(copies) if copies else None
    for r in results:
        r["ratio"] = r["seconds"] / floor if floor and not r["error"] else None
    return floor, results


def markdown(results) -> str:
    lines = ["| task | tool | seconds | ratio to floor | peak RSS GiB | note |",
             "|---|---|---:|---:|---:|---|"]
    for r in results:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "—"
        note = r["note"].replace("|", "\\|")
        lines.append(f"| {r['task']} | {r['tool']} | {r['seconds']:.2f} | {ratio} | "
                     f"{r['peak_rss_gib']:.2f} | {note} |")
    return "\n".join(lines)


def data_options(parser, *, rows: int, files: int) -> None:
    """The options ``dataset`` reads: --rows, --files, --seed, --data."""
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--files", type=int, default=files)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="reuse the Parquet files in DIR, or generate them there; "
                             "default: a temp dir, removed afterwards")


def dataset(args, scratch: Path) -> list[str]:
    """The input files: --data if it holds Parquet files, else generated there or in scratch."""
    folder = args.data or scratch / "data"
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        print(f"generating {args.rows:,} rows in {args.files} files into {folder} ...",
              file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(GENERATE), str(folder), "--rows", str(args.rows),
                        "--files", str(args.files), "--seed", str(args.seed), "--quiet"],
                       check=True)
        files = sorted(folder.glob("*.parquet"))
    return [str(f) for f in files]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data_options(parser, rows=20_000_000, files=32)
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="scratch dir for outputs (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--mem-cap-gb", type=float, default=None,
                        help="RLIMIT_AS per run; polars/jemalloc reserve a lot of virtual "
                             "memory, so a cap can fail runs that would fit in RSS")
    parser.add_argument("--in-memory-peers", action="store_true",
                        help=f"run pandas/sklearn even above {IN_MEMORY_MAX_ROWS:,} rows")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    args = parser.parse_args(argv)

    with scratch_dir(args.work, "impute") as scratch:
        files = dataset(args, scratch)
        input_rows = parquet_rows(files)
        floor, results = run_all(files, input_rows, scratch / "out", args)

    cap = f", RLIMIT_AS {args.mem_cap_gb:g} GiB" if args.mem_cap_gb else ""
    floor_text = f"floor (fastest copy) {floor:.2f} s" if floor else "no floor: both copies failed"
    print(f"\n{input_rows:,} rows in {len(files)} files, {os.cpu_count()} CPUs{cap}; "
          f"{floor_text}\n")
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps({
            "rows": input_rows, "files": len(files), "floor_seconds": floor,
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "versions": {name: version(name) for name in VERSIONED},
            "mem_cap_gb": args.mem_cap_gb, "timeout": args.timeout, "results": results,
        }, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        JOBS[sys.argv[2]](sys.argv[4:], Path(sys.argv[3]))
    else:
        main()
