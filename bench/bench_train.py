"""Time bigprep train against the usual ways to fit a linear classifier, each in its own process.

Usage::

    python bench/bench_train.py                               # 5M rows x 52 features, 20 files
    python bench/bench_train.py --rows 200000 --files 4       # smoke test, under a minute
    python bench/bench_train.py --data ~/train-5m --json results.json   # generate once, reuse

The data are generated here (numpy, seeded): ``--rows`` rows of 50 numeric features
``f_0..f_49`` (correlated, on very different scales) and two string columns ``c1``, ``c2``,
a binary target ``y`` drawn from a logistic model with noise whose intercept, some
coefficients and some feature means drift slowly with a time variable ``t``. The training
files are written in time order (``t`` sorted across them, as logs arrive); the test set
is drawn separately over the whole period, shuffled.

Every training run is one subprocess measured by ``measure`` (from bench_impute.py):
wall seconds and the process's own peak RSS. ROC AUC is taken afterwards on the test
set: ``bigprep evaluate`` for bigprep, scikit-learn's ``roc_auc_score`` for the others
(each saves its scaler and estimator; this script scores them). Peers run as
``python bench_train.py worker JOB CONFIG_JSON``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from bench_impute import measure, scratch_dir

N_NUMERIC = 50
NUMERIC = [f"f_{j}" for j in range(N_NUMERIC)]
CATS = ["c1", "c2"]
LEVELS = {"c1": [chr(ord("A") + i) for i in range(6)], "c2": [f"k{i:02d}" for i in range(40)]}
TARGET = "y"
IN_MEMORY_MAX_ROWS = 5_000_000
TEST_ROWS = 500_000
VERSIONED = ["bigprep", "scikit-learn", "numpy", "pandas", "polars", "pyarrow", "dask",
             "dask-ml"]


# --------------------------------------------------------------------------------------
# Data


def truth(seed: int) -> dict:
    """The generating model's parameters, from their own random stream."""
    rng = np.random.default_rng([seed, 0])
    w0 = rng.normal(0, 0.08, N_NUMERIC)
    w0[:10] = rng.normal(0, 0.45, 10)  # ten features that matter, forty that barely do
    dw = np.zeros(N_NUMERIC)
    dw[:10] = rng.normal(0, 0.3, 10)  # their weights drift over time
    zipf = 1.0 / np.arange(1, len(LEVELS["c2"]) + 1)
    return {
        "mu": rng.uniform(-5, 5, N_NUMERIC),
        "sigma": 10 ** rng.uniform(-1, 2, N_NUMERIC),  # scales from 0.1 to 100
        "loadings": rng.normal(0, 0.5, (5, N_NUMERIC)),  # five shared latent factors
        "w0": w0, "dw": dw,
        "effects": {c: rng.normal(0, 0.5, len(LEVELS[c])) for c in CATS},
        "p_c2": zipf / zipf.sum(),
    }


def block(p: dict, t: np.ndarray, rng: np.random.Generator):
    """One Parquet table of len(t) rows at times t (in [0, 1])."""
    import pyarrow as pa

    n = len(t)
    z = rng.standard_normal((n, 5)) @ p["loadings"] + rng.standard_normal((n, N_NUMERIC))
    z[:, :5] += t[:, None]  # five feature means move by one unit over the period
    c1 = rng.integers(0, len(LEVELS["c1"]), n)
    c2 = rng.choice(len(LEVELS["c2"]), n, p=p["p_c2"])
    logit = (-1.0 + 1.5 * t + z @ p["w0"] + t * (z @ p["dw"])
             + p["effects"]["c1"][c1] + p["effects"]["c2"][c2] + rng.normal(0, 1.0, n))
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    f = p["mu"] + p["sigma"] * z
    columns = {"t": t, **{name: f[:, j] for j, name in enumerate(NUMERIC)}}
    for c, codes in (("c1", c1), ("c2", c2)):
        columns[c] = pa.array(np.asarray(LEVELS[c], dtype=object)[codes], pa.string())
    columns[TARGET] = y
    return pa.table(columns)


def write_train(folder: Path, rows: int, files: int, seed: int) -> None:
    """Files in time order: t = (i + jitter) / rows for global row i, so sorted throughout."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    p = truth(seed)
    bounds = np.linspace(0, rows, files + 1).astype(np.int64)
    for k in range(files):
        rng = np.random.default_rng([seed, 2, rows, k])
        i = np.arange(bounds[k], bounds[k + 1])
        t = (i + rng.random(len(i))) / rows
        pq.write_table(block(p, t, rng), folder / f"part-{k:05d}.parquet")


def write_test(folder: Path, rows: int, seed: int, file_rows: int = 250_000) -> None:
    """Drawn over the whole period, in no order."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    p = truth(seed)
    for k in range(math.ceil(rows / file_rows)):
        rng = np.random.default_rng([seed, 1, k])
        n = min(file_rows, rows - k * file_rows)
        pq.write_table(block(p, rng.random(n), rng), folder / f"test-{k:05d}.parquet")


def parquet_rows(paths) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in paths)


def files_in(folder: Path, make) -> list[str]:
    """The *.parquet files in folder, written by make(folder) first if there are none."""
    found = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not found:
        began = time.perf_counter()
        print(f"generating {folder.name}/ ...", file=sys.stderr, flush=True)
        make(folder)
        found = sorted(folder.glob("*.parquet"))
        print(f"  {parquet_rows(found):,} rows in {len(found)} files, "
              f"{time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    return [str(f) for f in found]


# --------------------------------------------------------------------------------------
# Peer jobs: each runs in a fresh process as `worker JOB CONFIG_JSON`, config
# {"files": [...], "epochs": E, "out": PICKLE}. Each saves what scoring needs:
# the feature columns, the scaler's mean and scale, the fitted estimator.


def design(df):
    """One-hot features as a float frame, same columns whatever levels a file holds
    (the levels are known up front, so every file gets every dummy column)."""
    import pandas as pd

    df = df.assign(**{c: pd.Categorical(df[c], categories=LEVELS[c]) for c in CATS})
    return pd.get_dummies(df[NUMERIC + CATS], columns=CATS, dtype=float)


def save(out, columns, mean, scale, estimator, **info):
    with open(out, "wb") as fh:
        pickle.dump({"columns": list(columns), "mean": np.asarray(mean, dtype=float),
                     "scale": np.asarray(scale, dtype=float), "estimator": estimator,
                     "info": info}, fh)


def hand_loop(config):
    """The loop as people write it: files in order, every epoch; scaler updated as it goes."""
    import pandas as pd
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    clf = SGDClassifier(loss="log_loss", random_state=0)
    for _ in range(config["epochs"]):
        for f in config["files"]:
            df = pd.read_parquet(f, columns=NUMERIC + CATS + [TARGET])
            X = design(df)
            scaler.partial_fit(X)
            clf.partial_fit(scaler.transform(X), df[TARGET].to_numpy(), classes=[0, 1])
    save(config["out"], X.columns, scaler.mean_, scaler.scale_, clf)


def dask_ml_incremental(config):
    """dask-ml's documented route: dask frame -> dummies -> StandardScaler -> dask array ->
    Incremental(SGDClassifier).partial_fit once per epoch (blocks visited in shuffled order)."""
    import dask.dataframe as dd
    import pandas as pd
    from dask_ml.preprocessing import StandardScaler
    from dask_ml.wrappers import Incremental
    from sklearn.linear_model import SGDClassifier

    df = dd.read_parquet(config["files"], columns=NUMERIC + CATS + [TARGET])
    df = df.astype({c: pd.CategoricalDtype(LEVELS[c]) for c in CATS})
    X = dd.get_dummies(df[NUMERIC + CATS], columns=CATS, dtype=float)
    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X)
    note = None
    try:
        Xa = Xs.to_dask_array(lengths=True)
        ya = df[TARGET].to_dask_array(lengths=True)
    except ValueError as exc:
        # dask#12411: read_parquet fuses partitions when a projection drops columns
        # ("FusedIO"), and to_dask_array(lengths=True) then counts the unfused ones. Taking
        # features and target in one array reads every column, so nothing is fused.
        if "lengths" not in str(exc):
            raise
        note = "to_dask_array(lengths=True) fails (dask#12411): features and target " \
               "taken as one array"
        both = Xs.assign(**{TARGET: df[TARGET]}).to_dask_array(lengths=True)
        Xa, ya = both[:, :-1], both[:, -1].astype(np.int64)
    model = Incremental(SGDClassifier(loss="log_loss", random_state=0), random_state=0)
    for _ in range(config["epochs"]):
        model.partial_fit(Xa, ya, classes=[0, 1])
    save(config["out"], X.columns, scaler.mean_, scaler.scale_, model.estimator_,
         blocks=int(Xa.numblocks[0]), note=note)


def sklearn_in_memory(config):
    """Everything in one frame; LogisticRegression (lbfgs) on the standardised matrix."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    df = pd.concat([pd.read_parquet(f, columns=NUMERIC + CATS + [TARGET])
                    for f in config["files"]], ignore_index=True)
    X = design(df)
    scaler = StandardScaler()
    clf = LogisticRegression().fit(scaler.fit_transform(X), df[TARGET].to_numpy())
    save(config["out"], X.columns, scaler.mean_, scaler.scale_, clf,
         n_iter=int(clf.n_iter_.max()))


JOBS = {f.__name__: f for f in [hand_loop, dask_ml_incremental, sklearn_in_memory]}


# --------------------------------------------------------------------------------------
# Runs and scoring


def bigprep(*args):
    return [sys.executable, "-m", "bigprep", *map(str, args)]


def bigprep_train(files, model_dir, epochs):
    return bigprep("train", *files, "--target", TARGET, "--model", "logistic", "--out",
                   model_dir, "--features", "f_*", "--categorical", ",".join(CATS),
                   "--epochs", epochs, "--validation", 0.05, "-q")


def bigprep_evaluate(model_dir, test, timeout):
    """AUC from `bigprep evaluate --json`, and seconds (stdout is needed, so not measure())."""
    began = time.perf_counter()
    done = subprocess.run(bigprep("evaluate", model_dir, *test, "--json", "-q"), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - began
    if done.returncode:
        return None, seconds, f"evaluate failed: {done.stderr.strip()[-160:]}"
    return json.loads(done.stdout).get("roc_auc"), seconds, None


def bigprep_check_auc(model_dir, test, work, timeout):
    """scikit-learn's exact AUC on `bigprep predict --proba` output, to check evaluate's."""
    import polars as pl
    from sklearn.metrics import roc_auc_score

    out = work / "predicted"
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(bigprep("predict", model_dir, *test, "--out", out, "--keep", TARGET,
                                  "--proba", "-q"),
                          cwd=REPO, capture_output=True, timeout=timeout, check=False)
    if done.returncode:
        return None
    frame = pl.read_parquet(sorted(out.rglob("*.parquet")))
    shutil.rmtree(out, ignore_errors=True)
    return float(roc_auc_score(frame[TARGET].to_numpy(), frame["proba_1"].to_numpy()))


def score(saved: Path, test) -> tuple[float, dict]:
    """ROC AUC of a saved peer model on the test set (decision function, exact)."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    with open(saved, "rb") as fh:
        m = pickle.load(fh)
    df = pd.concat([pd.read_parquet(f) for f in test], ignore_index=True)
    X = design(df).reindex(columns=m["columns"], fill_value=0.0).to_numpy()
    X = (X - m["mean"]) / np.where(m["scale"] > 0, m["scale"], 1.0)
    return float(roc_auc_score(df[TARGET].to_numpy(), m["estimator"].decision_function(X))), \
        m["info"]


def history(model_dir: Path) -> list:
    """bigprep's per-epoch validation losses, from model.json."""
    try:
        return json.loads((model_dir / "model.json").read_text())["payload"]["history"]
    except (OSError, ValueError, KeyError):
        return []


def settle(files) -> None:
    """Start every run from the same state: written data flushed, then the files read once
    into the page cache (the first run after generating them otherwise pays for writeback)."""
    os.sync()
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def timed(cmd, files, args, before=None) -> dict:
    """measure() cmd --repeat times, each from a settled page cache: the fastest run's
    seconds, the highest peak RSS; stops at the first failure."""
    runs = []
    for _ in range(args.repeat):
        if before:
            before()
        settle(files)
        runs.append(measure(cmd, timeout=args.timeout))
        if runs[-1]["error"]:
            return runs[-1]
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "peak_rss_gib": max(r["peak_rss_gib"] for r in runs),
            "all_seconds": [r["seconds"] for r in runs]}


def run_bigprep(tool, files, rows, test, work, args):
    model_dir = work / tool.replace(" ", "_").replace(",", "")
    print(f"running {tool} ...", file=sys.stderr, flush=True)
    result = {"tool": tool, "rows": rows, "files": len(files),
              **timed(bigprep_train(files, model_dir, args.epochs), files, args,
                      before=lambda: shutil.rmtree(model_dir, ignore_errors=True))}
    losses = [h["validation_loss"] for h in history(model_dir)]
    result.update(epochs=len(losses) or None, validation_losses=losses)
    notes = []
    if result["error"]:
        notes.append(f"FAILED, {result['error']}")
    else:
        if losses and len(losses) < args.epochs:
            best = min(range(len(losses)), key=losses.__getitem__) + 1
            notes.append(f"early stop after {len(losses)} epochs (best validation loss: "
                         f"epoch {best})")
        auc, seconds, error = bigprep_evaluate(model_dir, test, args.timeout)
        result.update(roc_auc=auc, evaluate_seconds=seconds)
        notes.append(error or f"evaluate {seconds:.1f} s")
        check = bigprep_check_auc(model_dir, test, work, args.timeout)
        result["roc_auc_sklearn"] = check
        if check is not None:
            notes.append(f"sklearn AUC on its predict --proba {check:.4f}")
    result["note"] = "; ".join(notes)
    return result


NOTES = {
    "hand_loop": "files in time order each epoch; SGD defaults (optimal step, no averaging)",
    "dask_ml_incremental": "blocks shuffled each epoch; + scaler and lengths passes",
    "sklearn_in_memory": "lbfgs, whole training set in memory",
}
TOOLS = {"hand_loop": "hand loop (pandas + SGDClassifier)",
         "dask_ml_incremental": "dask-ml Incremental(SGDClassifier)",
         "sklearn_in_memory": "sklearn LogisticRegression, in memory"}


def run_peer(job, files, rows, test, work, args):
    saved = work / f"{job}.pkl"
    config = {"files": files, "epochs": args.epochs, "out": str(saved)}
    print(f"running {TOOLS[job]} ...", file=sys.stderr, flush=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "worker", job, json.dumps(config)]
    result = {"tool": TOOLS[job], "rows": rows, "files": len(files),
              **timed(cmd, files, args, before=lambda: saved.unlink(missing_ok=True)),
              "epochs": None if job == "sklearn_in_memory" else args.epochs}
    notes = [NOTES[job]]
    if result["error"]:
        result["epochs"] = None
        notes.insert(0, f"FAILED, {result['error']}")
    else:
        result["roc_auc"], info = score(saved, test)
        if "n_iter" in info:
            notes.append(f"{info['n_iter']} lbfgs iterations")
        if info.get("blocks"):
            notes.append(f"{info['blocks']} blocks")
        if info.get("note"):
            notes.append(info["note"])
    result["note"] = "; ".join(notes)
    return result


def run_all(data: Path, work: Path, args) -> list[dict]:
    train = files_in(data / "train", lambda d: write_train(d, args.rows, args.files, args.seed))
    rows = parquet_rows(train)
    test_rows = args.test_rows or min(TEST_ROWS, max(rows // 10, 10_000))
    test = files_in(data / "test", lambda d: write_test(d, test_rows, args.seed))
    results = [run_bigprep("bigprep", train, rows, test, work, args)]
    results.append(run_peer("hand_loop", train, rows, test, work, args))
    results.append(run_peer("dask_ml_incremental", train, rows, test, work, args))
    if rows <= IN_MEMORY_MAX_ROWS:
        results.append(run_peer("sklearn_in_memory", train, rows, test, work, args))
    else:
        results.append({"tool": TOOLS["sklearn_in_memory"], "rows": rows, "seconds": None,
                        "peak_rss_gib": None, "error": "skipped",
                        "note": f"skipped: over {IN_MEMORY_MAX_ROWS:,} rows"})
    if not args.no_double:
        double = files_in(data / "train-2x",
                          lambda d: write_train(d, 2 * rows, 2 * len(train), args.seed))
        results.append(run_bigprep("bigprep, 2x rows", double, parquet_rows(double), test,
                                   work, args))
        one, two = results[0], results[-1]
        if one["peak_rss_gib"] and two["peak_rss_gib"] and not two["error"]:
            two["note"] = (f"peak RSS {one['peak_rss_gib']:.2f} GiB at 1x, "
                           f"{two['peak_rss_gib']:.2f} GiB at 2x "
                           f"({two['peak_rss_gib'] / one['peak_rss_gib']:.2f}x); "
                           + two["note"])
    for r in results:
        ok = not r.get("error") and r.get("epochs")
        r["rows_per_second"] = r["rows"] * r["epochs"] / r["seconds"] if ok else None
    return results


def throughput_ratio(results):
    by = {r["tool"]: r.get("rows_per_second") for r in results}
    mine, theirs = by.get("bigprep"), by.get(TOOLS["hand_loop"])
    return mine / theirs if mine and theirs else None


def markdown(results) -> str:
    def num(value, fmt):
        return "—" if value is None else format(value, fmt)

    lines = ["| tool | epochs | seconds | rows/s | peak RSS GiB | ROC AUC | note |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        tool = r["tool"] + (f" ({r['rows']:,} rows)" if "2x" in r["tool"] else "")
        note = r["note"].replace("|", "\\|")
        lines.append(f"| {tool} | {num(r.get('epochs'), 'd')} | {num(r['seconds'], '.1f')} | "
                     f"{num(r.get('rows_per_second'), ',.0f')} | "
                     f"{num(r['peak_rss_gib'], '.2f')} | {num(r.get('roc_auc'), '.4f')} | "
                     f"{note} |")
    return "\n".join(lines)


def versions() -> dict:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--test-rows", type=int, default=None,
                        help=f"default {TEST_ROWS:,} (a tenth of --rows when that is less)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="reuse DIR/train, DIR/test and DIR/train-2x, or generate them "
                             "there; default: a temp dir, removed afterwards")
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="scratch dir for models (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each training N times; report the fastest (and the "
                             "highest peak RSS)")
    parser.add_argument("--no-double", action="store_true",
                        help="skip the bigprep run on twice the rows")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    with scratch_dir(args.work, "train") as scratch:
        data = args.data.expanduser() if args.data else scratch / "data"
        results = run_all(data, scratch, args)
        rows, test_rows = results[0]["rows"], parquet_rows((data / "test").glob("*.parquet"))
        files = results[0]["files"]

    ratio = throughput_ratio(results)
    print(f"\n{rows:,} training rows in {files} files (time order), {test_rows:,} test rows, "
          f"{args.epochs} epochs, {os.cpu_count()} CPUs"
          + (f", fastest of {args.repeat} runs" if args.repeat > 1 else "") + "; "
          f"total {time.perf_counter() - began:.0f} s\n")
    print(markdown(results))
    print("\nbigprep / hand loop throughput (rows x epochs per second): "
          + (f"{ratio:.2f}x" if ratio else "n/a"))
    if args.json:
        args.json.write_text(json.dumps({
            "rows": rows, "files": files, "test_rows": test_rows, "epochs": args.epochs,
            "seed": args.seed, "repeat": args.repeat, "cpus": os.cpu_count(), "python": platform.python_version(),
            "versions": versions(), "throughput_ratio_bigprep_to_hand_loop": ratio,
            "results": results}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        JOBS[sys.argv[2]](json.loads(sys.argv[3]))
    else:
        main()
