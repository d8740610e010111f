"""Time a 3-step `bigprep run` pipeline against the same steps run as separate commands.

Usage::

    python bench/bench_pipeline.py                                   # 8M rows, 16 files
    python bench/bench_pipeline.py --rows 300000 --files 4 --rounds 1  # smoke test
    python bench/bench_pipeline.py --data ~/sensors-8m --json pipeline-results.json

The steps, on ``sample_data/generate.py`` data, are the same in both arms:

1. impute: temp=interpolate,ffill,median, humidity=ffill, status=mode, per sensor_id,
   ordered by ts;
2. TF-IDF of ``note`` (min_df 2), vectors plus the top 5 keywords;
3. predict with a linear model of calib on temp,humidity (``bigprep train``, run once
   before the rounds and not timed).

- **pipeline**: ``python -m bigprep run SPEC.yaml``, its output and state folders removed
  before every run, so each run is a first run doing the full work.
- **commands**: what a user types to get the same output: ``bigprep impute``, ``bigprep
  tfidf fit`` + ``bigprep tfidf transform`` on the imputed files, ``bigprep predict`` on
  the vectors (``--keep`` passes every column on, as the pipeline does). Its wall time is
  the sum of the four processes, its peak RSS the highest of them (they run one after
  another).
- **floor**: a polars scan/sink copy of the same files (``bench_impute.py worker
  polars_copy``).

Every process is run by ``measure()`` from ``bench_impute.py``: wall time and that
process's own peak RSS (VmHWM polled from /proc). The arms are interleaved (floor,
pipeline, commands, floor, ...) for ``--rounds`` rounds and the table gives medians. The
final outputs of both arms are checked: row counts (Parquet footers) against the input,
and the same column names.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_impute import data_options, dataset, measure, parquet_rows, scratch_dir

BIGPREP = [sys.executable, "-m", "bigprep"]
COPY = [sys.executable, str(HERE / "bench_impute.py"), "worker", "polars_copy"]
IMPUTE = ["--column", "temp=interpolate,ffill,median", "--column", "humidity=ffill",
          "--column", "status=mode", "--group-by", "sensor_id", "--order-by", "ts"]
TFIDF_COLUMNS = ["tfidf_indices", "tfidf_weights", "keywords"]
STEPS = ["impute", "tfidf fit", "tfidf transform", "predict"]
ARMS = ["floor", "pipeline", "commands"]


def spec_text(files, model, out, state) -> str:
    q = json.dumps  # a JSON string is a YAML string: any path is quoted safely
    return f"""\
name: bench_pipeline
input: [{", ".join(q(f) for f in files)}]
output: {q(str(out))}
state: {q(str(state))}
steps:
  - impute:
      group_by: sensor_id
      order_by: ts
      columns: {{temp: "interpolate,ffill,median", humidity: ffill, status: mode}}
  - tfidf: {{text_column: note, min_df: 2, keywords: 5}}
  - predict: {{model: {q(str(model))}}}
"""


def commands(files, model, work, columns):
    """(step, argv) of the command arm, in order; each reads the previous one's output."""
    imputed, vectors, final = work / "imputed", work / "vectors", work / "final"
    state = work / "tfidf" / "state.json"
    return [
        ("impute", [*BIGPREP, "impute", *files, "--out", imputed, "--quiet", *IMPUTE]),
        ("tfidf fit", [*BIGPREP, "tfidf", "fit", imputed, "--text-column", "note",
                       "--min-df", "2", "--state", state, "--quiet"]),
        ("tfidf transform", [*BIGPREP, "tfidf", "transform", imputed, "--state", state,
                             "--out", vectors, "--keywords", "5", "--keep", ",".join(columns),
                             "--quiet"]),
        ("predict", [*BIGPREP, "predict", model, vectors, "--out", final,
                     "--keep", ",".join(columns + TFIDF_COLUMNS), "--quiet"]),
    ]


def output_of(folder: Path):
    """(rows, column names) of the Parquet files below folder."""
    import pyarrow.parquet as pq

    files = sorted(folder.rglob("*.parquet"))
    names = {tuple(pq.read_schema(f).names) for f in files}
    return parquet_rows(files), (names.pop() if len(names) == 1 else sorted(names))


def run_arm(arm, files, model, work, spec, columns, timeout):
    """Run one arm from clean folders; returns its processes' results and its output."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.sync()  # the previous arm's writes are not flushed during this one
    if arm == "floor":
        runs = [("copy", [*COPY, str(work), *files])]
    elif arm == "pipeline":  # output and state are in work: every run is a first run
        runs = [("run", [*BIGPREP, "run", str(spec), "--quiet"])]
    else:
        runs = commands(files, model, work, columns)
    results = {}
    for step, argv in runs:
        print(f"  {arm}: {step} ...", file=sys.stderr, flush=True)
        results[step] = measure([str(a) for a in argv], timeout=timeout)
        if results[step]["error"]:
            break
    final = {"floor": work, "pipeline": work / "out", "commands": work / "final"}[arm]
    return results, output_of(final)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(rounds):
    """Median wall seconds and peak RSS (MiB) per table row, over the rounds."""
    def total(results, keys):
        ok = len(results) == len(keys) and not any(r["error"] for r in results.values())
        return ((sum(r["seconds"] for r in results.values()),
                 max(r["peak_rss_gib"] for r in results.values()) * 1024) if ok
                else (None, None))

    rows = {"floor": [total(r["floor"]["runs"], ["copy"]) for r in rounds],
            "pipeline": [total(r["pipeline"]["runs"], ["run"]) for r in rounds],
            "commands": [total(r["commands"]["runs"], STEPS) for r in rounds]}
    for step in STEPS:
        rows[step] = [total({step: r["commands"]["runs"][step]}, [step])
                      if step in r["commands"]["runs"] else (None, None) for r in rounds]
    return {name: {"seconds": median(s for s, _ in pairs), "peak_mib": median(p for _, p in pairs)}
            for name, pairs in rows.items()}


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "—"


def markdown(summary, notes) -> str:
    floor, cmds = summary["floor"], summary["commands"]
    labels = {"floor": "floor: polars scan/sink copy", "pipeline": "pipeline: `bigprep run`",
              "commands": "commands: sum of the four", **{s: f"· {s}" for s in STEPS}}
    header = ["run", "wall s", "wall / floor", "wall / commands", "peak RSS MiB",
              "peak / floor", "peak / commands", "note"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * 6 + "---|"]
    for name, label in labels.items():
        s, p = summary[name]["seconds"], summary[name]["peak_mib"]
        both = name in ("pipeline", "commands")  # the ratio to the commands: those two only
        cells = [label, "—" if s is None else f"{s:.2f}", ratio(s, floor["seconds"]),
                 ratio(s, cmds["seconds"]) if both else "", "—" if p is None else f"{p:.0f}",
                 ratio(p, floor["peak_mib"]), ratio(p, cmds["peak_mib"]) if both else "",
                 "; ".join(notes.get(name, [])).replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check(rounds, input_rows):
    """Notes per arm: failures, row counts, and whether both arms' columns match."""
    notes = {arm: [] for arm in ARMS}
    for r in rounds:
        for arm in ARMS:
            for step, res in r[arm]["runs"].items():
                if res["error"]:
                    where = arm if arm != "commands" else step
                    notes.setdefault(where, []).append(f"FAILED: {res['error']}")
            rows = r[arm]["rows"]
            if rows != input_rows:
                notes[arm].append(f"ROWS {rows:,} != {input_rows:,}")
        ours, theirs = r["pipeline"]["columns"], r["commands"]["columns"]
        if ours and theirs and list(ours) != list(theirs):
            only = sorted(set(ours) ^ set(theirs))
            notes["pipeline"].append(f"COLUMNS DIFFER from the commands': {only}" if only
                                     else "column ORDER differs from the commands'")
    notes = {k: list(dict.fromkeys(v)) or ["rows ok"] for k, v in notes.items()}
    names = {tuple(r[arm]["columns"]) for r in rounds for arm in ("pipeline", "commands")}
    if len(names) == 1 and (only := names.pop()):
        notes["pipeline"].append(f"same {len(only)} columns as the commands'")
    notes["commands"].append("wall: sum; peak: highest of the four")
    return notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data_options(parser, rows=8_000_000, files=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="scratch dir for model, outputs and states (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results here")
    args = parser.parse_args(argv)

    with scratch_dir(args.work, "pipeline") as scratch:
        files = dataset(args, scratch)
        input_rows = parquet_rows(files)
        import pyarrow.parquet as pq

        columns = pq.read_schema(files[0]).names
        model = scratch / "model"
        print("training the model (not timed) ...", file=sys.stderr, flush=True)
        subprocess.run([*BIGPREP, "train", *files, "--target", "calib", "--features",
                        "temp,humidity", "--model", "linear", "--out", str(model), "--quiet"],
                       check=True, cwd=HERE.parent)
        spec = scratch / "bench_pipeline.yaml"
        pipeline_work = scratch / "pipeline"
        spec.write_text(spec_text(files, model, pipeline_work / "out", pipeline_work / "state"))
        rounds = []
        for i in range(args.rounds):
            print(f"round {i + 1} of {args.rounds}", file=sys.stderr, flush=True)
            this = {}
            for arm in ARMS:
                runs, (rows, names) = run_arm(arm, files, model, scratch / arm, spec,
                                              columns, args.timeout)
                this[arm] = {"runs": runs, "rows": rows, "columns": names}
            rounds.append(this)

    summary = summarise(rounds)
    notes = check(rounds, input_rows)
    pipe, cmds = summary["pipeline"], summary["commands"]
    print(f"\n{input_rows:,} rows in {len(files)} files, {os.cpu_count()} CPUs, "
          f"median of {args.rounds} round(s)\n")
    print(markdown(summary, notes))
    if pipe["seconds"] is not None and cmds["seconds"] is not None:
        print(f"\npipeline = {pipe['seconds'] / cmds['seconds']:.2f} x the three commands "
              f"(wall), peak {pipe['peak_mib']:.0f} MiB vs {cmds['peak_mib']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({
            "rows": input_rows, "files": len(files), "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "versions": {n: version(n) for n in ["bigprep", "polars", "pyarrow"]},
            "summary": summary, "notes": notes, "rounds": rounds,
        }, indent=1))


if __name__ == "__main__":
    main()
