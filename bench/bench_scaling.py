"""How `bigprep impute` scales with Dask worker processes on this machine.

Times the same job with the embedded threaded scheduler (the default), and with
a local cluster of 1 and 2 worker processes (`--workers N`), on the benchmark's
sensor data, each in its own process (wall time, the process's own peak RSS).
With 2 cores, expect little from 2 processes over threads: the report says so.

    python bench/bench_scaling.py --data ~/sensors-20m   # generates it there if empty
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_impute import measure

REPO = HERE.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of sensor Parquet files")
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--files", type=int, default=32)
    parser.add_argument("--strategy", default="median")
    args = parser.parse_args()
    data = Path(args.data).expanduser()
    if not list(data.glob("*.parquet")):
        subprocess.run([sys.executable, str(REPO / "sample_data" / "generate.py"), str(data),
                        "--rows", str(args.rows), "--files", str(args.files), "-q"], check=True)
    files = sorted(str(p) for p in data.glob("*.parquet"))
    print("| mode | seconds | peak RSS GiB (client process) | note |\n|---|---:|---:|---|")
    for label, extra in (("threads (default)", []), ("--workers 1", ["--workers", "1"]),
                         ("--workers 2", ["--workers", "2"])):
        out = Path(tempfile.mkdtemp())
        cmd = [sys.executable, "-m", "bigprep", "impute", *files, "--out", str(out), "-q",
               "--strategy", args.strategy, *extra]
        result = measure(cmd, timeout=1800)
        note = result["error"] or ("workers' memory not included" if extra else "")
        print(f"| {label} | {result['seconds']:.2f} | {result['peak_rss_gib']:.2f} | {note} |")
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
