"""Run bigprep and its peers side by side, in interleaved rounds, and print Markdown tables.

Usage::

    python bench/compare.py                                   # 8M rows, 16 files, 3 rounds
    python bench/compare.py --rows 200000 --files 4 --rounds 1 --docs 2000   # smoke test
    python bench/compare.py --only capped --rows 40000000 --cache ~/bench-data
    python bench/compare.py --only impute,small --json compare.json

Sections (``--only``, default all but ``capped``):

- **impute**: mean, median, per-sensor ffill and interpolate with bigprep, polars and
  DuckDB on ``sample_data/generate.py`` data, against a polars scan/sink copy (the floor)
  and a pyarrow read/write copy.
- **capped**: the same four tasks with bigprep, polars (streaming engine) and DuckDB
  (``memory_limit``, spilling to disk), each process in a memory cgroup with a hard cap
  (``--cap-gb``); who finishes, and why the others did not.
- **tfidf**: bigprep ``tfidf fit --out`` (fit, then the vectors written) against scikit-learn's
  ``TfidfVectorizer.fit_transform`` on four corpora/analyzers (English words, English word
  bigrams, Chinese character bigrams, Chinese words with jieba).
- **train**: ``bigprep train`` against a hand-written ``partial_fit`` loop
  (``bench_train.py``'s data and workers): rows/s and test ROC AUC.
- **small**: start-up, the README quick start on the bundled sample, a 1M-row impute.

Every measured row is one subprocess (or, for bigprep TF-IDF, two: fit then transform,
summed) run by ``measure()`` from ``bench_impute.py``: wall seconds and that process's own
peak RSS. Each round runs every (task, tool) of the plan once, in the same order; the
tables give the median seconds and the highest peak RSS over the rounds. Ratios are to a
floor measured in the same rounds (the polars copy of the same files for imputation).
Peers run as ``python bench/compare.py worker JOB CONFIG_JSON``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from bench_impute import NUMERIC, data_options, dataset, measure, parquet_rows, scratch_dir

PY = sys.executable
SELF = str(Path(__file__).resolve())
GROUP, ORDER = "sensor_id", "ts"
FFILL = ["temp", "humidity", "pressure"]  # forward fill per sensor, ordered by ts
INTERPOLATE = ["temp", "humidity"]        # linear in ts per sensor; edges stay null
SECTIONS = ["impute", "capped", "tfidf", "train", "small"]
DEFAULT_SECTIONS = ["impute", "tfidf", "train", "small"]
VERSIONED = ["bigprep", "polars", "pyarrow", "duckdb", "scikit-learn", "jieba", "numpy",
             "pandas"]

BIGPREP_IMPUTE = {
    "mean": ["--strategy", "mean"],
    "median": ["--strategy", "median"],
    "ffill": [*(a for c in FFILL for a in ("--column", f"{c}=ffill")),
              "--group-by", GROUP, "--order-by", ORDER],
    "interpolate": [*(a for c in INTERPOLATE for a in ("--column", f"{c}=interpolate")),
                    "--group-by", GROUP, "--order-by", ORDER],
}

# corpus -> (language, bigprep tfidf fit options, TfidfVectorizer keywords, jieba)
TFIDF = {
    "English words": ("en", [], {}, False),
    "English word bigrams": ("en", ["--ngram", "2,2"], {"ngram_range": [2, 2]}, False),
    "Chinese char bigrams": ("zh", ["--analyzer", "char", "--ngram", "2,2"],
                             {"analyzer": "char", "ngram_range": [2, 2]}, False),
    "Chinese words (jieba)": ("zh", ["--tokenizer", "jieba"], {}, True),
}
TFIDF_GOAL = 0.33  # bigprep fit + transform seconds over TfidfVectorizer's


# --------------------------------------------------------------------------------------
# Peer jobs: each runs in a fresh process as `worker JOB CONFIG_JSON`; the config holds
# "files", "out" and, for DuckDB, "threads" and (capped) "memory_limit", "temp_directory".
# Imports are inside the jobs so a process loads only the library it measures.


def _out(cfg, name) -> str:
    return str(Path(cfg["out"]) / Path(name).name)


def polars_ffill(cfg):
    import polars as pl

    (pl.scan_parquet(cfg["files"])
     .with_columns(pl.col(c).forward_fill().over(GROUP, order_by=ORDER) for c in FFILL)
     .sink_parquet(_out(cfg, "all.parquet"), engine="streaming"))


def polars_interpolate(cfg):
    """interpolate_by orders by ts itself (and leaves the edges null), so over() needs no
    order_by here."""
    import polars as pl

    (pl.scan_parquet(cfg["files"])
     .with_columns(pl.col(c).interpolate_by(ORDER).over(GROUP) for c in INTERPOLATE)
     .sink_parquet(_out(cfg, "all.parquet"), engine="streaming"))


def sql_str(text) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _duckdb(cfg):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {int(cfg['threads'])}")
    if cfg.get("memory_limit"):
        con.execute(f"SET memory_limit = {sql_str(cfg['memory_limit'])}")
        con.execute(f"SET temp_directory = {sql_str(cfg['temp_directory'])}")
    return con


def _read(files) -> str:
    return f"read_parquet([{', '.join(sql_str(f) for f in files)}])"


def _copy(con, select: str, out: str) -> None:
    con.execute(f"COPY ({select}) TO {sql_str(out)} (FORMAT parquet, COMPRESSION zstd)")


def _duckdb_fill(cfg, stat):
    """Statistics over all files in one query, then one COPY per file with coalesce."""
    con = _duckdb(cfg)
    files = cfg["files"]
    types = {row[0]: row[1] for row in con.execute(
        f"DESCRIBE SELECT {', '.join(NUMERIC)} FROM {_read(files)}").fetchall()}
    stats = con.execute(f"SELECT {', '.join(f'{stat}({c})' for c in NUMERIC)} "
                        f"FROM {_read(files)}").fetchone()
    fills = []
    for c, value in zip(NUMERIC, stats, strict=True):
        if value is None:  # all null: nothing to fill with
            continue
        if types[c] in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT"):
            literal = str(round(value))  # avg / median are fractional: half to even, as bigprep
        else:
            literal = f"CAST({sql_str(repr(float(value)))} AS DOUBLE)"
        fills.append(f"coalesce({c}, {literal})::{types[c]} AS {c}")
    for f in files:
        _copy(con, f"SELECT * REPLACE ({', '.join(fills)}) FROM read_parquet({sql_str(f)})",
              _out(cfg, f))


def duckdb_mean(cfg):
    _duckdb_fill(cfg, "avg")


def duckdb_median(cfg):
    _duckdb_fill(cfg, "median")  # exact (quantile_cont 0.5)


WINDOW = f"WINDOW w AS (PARTITION BY {GROUP} ORDER BY {ORDER})"
BEFORE = "(w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
AFTER = "(w ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)"


def duckdb_ffill(cfg):
    con = _duckdb(cfg)
    fills = ", ".join(f"last_value({c} IGNORE NULLS) OVER {BEFORE} AS {c}" for c in FFILL)
    _copy(con, f"SELECT * REPLACE ({fills}) FROM {_read(cfg['files'])} {WINDOW}",
          _out(cfg, "all.parquet"))


def duckdb_fill(cfg):
    """fill(): linear in the ORDER BY value, but it also extrapolates before the first and
    after the last valid value of a partition (the task leaves those null)."""
    con = _duckdb(cfg)
    fills = ", ".join(f"fill({c}) OVER w AS {c}" for c in INTERPOLATE)
    _copy(con, f"SELECT * REPLACE ({fills}) FROM {_read(cfg['files'])} {WINDOW}",
          _out(cfg, "all.parquet"))


def duckdb_fill_inside(cfg):
    """fill() where there is a valid value on both sides, null at the edges: the task."""
    con = _duckdb(cfg)
    fills = ", ".join(
        f"CASE WHEN last_value({c} IGNORE NULLS) OVER {BEFORE} IS NOT NULL "
        f"AND first_value({c} IGNORE NULLS) OVER {AFTER} IS NOT NULL "
        f"THEN fill({c}) OVER w END AS {c}" for c in INTERPOLATE)
    _copy(con, f"SELECT * REPLACE ({fills}) FROM {_read(cfg['files'])} {WINDOW}",
          _out(cfg, "all.parquet"))


def sklearn_tfidf(cfg):
    """TfidfVectorizer.fit_transform over the texts read from the files (timed too)."""
    from bench_tfidf import read_texts
    from sklearn.feature_extraction.text import TfidfVectorizer

    params = dict(cfg["params"])
    if "ngram_range" in params:
        params["ngram_range"] = tuple(params["ngram_range"])
    if cfg.get("jieba"):  # as bigprep's --tokenizer jieba: jieba.lcut on the lowercased text
        import jieba

        jieba.setLogLevel(60)
        params.update(tokenizer=jieba.lcut, token_pattern=None)
    matrix = TfidfVectorizer(**params).fit_transform(read_texts(cfg["files"]))
    (Path(cfg["out"]) / "result.json").write_text(json.dumps(
        {"docs": matrix.shape[0], "features": matrix.shape[1], "nnz": int(matrix.nnz)}))


JOBS = {f.__name__: f for f in [
    polars_ffill, polars_interpolate, duckdb_mean, duckdb_median, duckdb_ffill, duckdb_fill,
    duckdb_fill_inside, sklearn_tfidf,
]}


# --------------------------------------------------------------------------------------
# Memory cgroups (from tests/test_memory.py's _cgroup, nested in our own group first)


def _own_cgroups() -> dict[str, str]:
    """controllers -> path of this process's cgroups ("" is the v2 hierarchy)."""
    own = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            own[controllers] = path
    except OSError:
        pass
    return own


def memory_cgroup(limit_bytes: int) -> dict | None:
    """A fresh memory cgroup with a hard limit and no swap, or None where we may not make
    one. Nested in this process's own memory cgroup when allowed (its limits still hold),
    else at the root; cgroup v1 or v2."""
    own, leaf = _own_cgroups(), f"bench-compare-{uuid.uuid4().hex[:8]}"
    candidates = []
    v1 = Path("/sys/fs/cgroup/memory")
    if v1.is_dir():
        for parent in dict.fromkeys([own.get("memory", "/"), "/"]):
            candidates.append(("v1", v1 / parent.lstrip("/") / leaf, "memory.limit_in_bytes",
                               "memory.memsw.limit_in_bytes", str(limit_bytes)))
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists():
        for parent in dict.fromkeys([own.get("", "/"), "/"]):
            candidates.append(("v2", v2 / parent.lstrip("/") / leaf, "memory.max",
                               "memory.swap.max", "0"))
    for kind, path, limit_file, swap_file, swap_value in candidates:
        try:
            path.mkdir()
            (path / limit_file).write_text(str(limit_bytes))
        except OSError:
            if path.is_dir():
                path.rmdir()
            continue
        try:  # no swapping around the cap (absent without swap accounting: fine)
            (path / swap_file).write_text(swap_value)
        except OSError:
            pass
        return {"kind": kind, "path": path, "limit_bytes": limit_bytes}
    return None


def cgroup_oom_kills(group: dict) -> int:
    name = "memory.oom_control" if group["kind"] == "v1" else "memory.events"
    try:
        for line in (group["path"] / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def remove_cgroup(group: dict) -> None:
    for _ in range(50):  # its last process may take a moment to leave
        try:
            group["path"].rmdir()
            return
        except OSError:
            time.sleep(0.1)


def in_cgroup(cmd: list[str], group: dict) -> list[str]:
    """The shell joins the cgroup, then becomes the command (same pid: measure() sees it)."""
    return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group["path"] / "cgroup.procs"),
            *cmd]


def cgroup_support(cap_gb: float) -> str | None:
    """How the capped runs will be held: a description, None if only RLIMIT_AS is left."""
    group = memory_cgroup(int(cap_gb * 2**30))
    if not group:
        return None
    remove_cgroup(group)
    return f"cgroup {group['kind']} hard limit {cap_gb:g} GiB, no swap"


# --------------------------------------------------------------------------------------
# The plan: entries, each one table row, run once per round


@dataclass
class Entry:
    section: str
    task: str
    tool: str
    steps: list[tuple[str, list[str]]]         # (step, argv), run one after another
    out: Path | None = None                    # emptied before every run
    check: Callable[[], str] | None = None     # note on a finished run's output
    note: str = ""
    floor: str | None = None                   # key of the entry the ratio is to
    capped: bool = False
    before: Callable[[], None] | None = None
    rounds: list[dict] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.section}/{self.task}/{self.tool}"


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def rows_check(out: Path, expected: int) -> Callable[[], str]:
    def check():
        written = parquet_rows(out.rglob("*.parquet"))
        return "rows ok" if written == expected else f"ROW COUNT {written:,} != {expected:,}"
    return check


def worker(job: str, **config) -> list[str]:
    return [PY, SELF, "worker", job, json.dumps(config)]


def impute_worker(job: str, files, out) -> list[str]:
    return [PY, str(HERE / "bench_impute.py"), "worker", job, str(out), *files]


def bigprep(*args) -> list[str]:
    return [PY, "-m", "bigprep", *map(str, args)]


def impute_entries(section: str, files, rows: int, work: Path, args) -> list[Entry]:
    """Copies (the floor), then mean, median, ffill, interpolate with every tool."""
    capped = section == "capped"
    duck = {"threads": os.cpu_count() or 1}
    if capped:
        duck.update(memory_limit=args.duckdb_memory_limit,
                    temp_directory=str(work / "duckdb-tmp"))
    entries = []

    def add(task, tool, make, note=""):
        out = work / "out" / f"{section}-{len(entries)}"
        spill = capped and tool.startswith("duckdb")
        entries.append(Entry(section, task, tool, [(tool, make(out))], out=out,
                             check=rows_check(out, rows), note=note, capped=capped,
                             floor=f"{section}/copy/polars scan/sink",
                             before=(lambda: fresh(work / "duckdb-tmp")) if spill else None))

    def duckdb_job(job):
        return lambda out: worker(job, files=files, out=str(out), **duck)

    def bigprep_job(task):
        return lambda out: bigprep("impute", *files, "--out", out, "--quiet",
                                   *BIGPREP_IMPUTE[task])

    add("copy", "polars scan/sink", lambda out: impute_worker("polars_copy", files, out),
        "the floor: scan_parquet(f).sink_parquet() per file")
    if not capped:
        add("copy", "pyarrow read/write", lambda out: impute_worker("pyarrow_copy", files, out),
            "read_table + write_table(zstd) per file")
    duck_note = "; ".join(filter(None, [
        f"threads={duck['threads']}",
        f"memory_limit={duck['memory_limit']}, spills to temp_directory" if capped else ""]))
    for task in ("mean", "median"):
        add(task, "bigprep", bigprep_job(task))
        add(task, "polars two passes", lambda out, task=task: impute_worker(
            f"polars_two_pass_{task}", files, out),
            "stats with the streaming engine, then with_columns(fill_null) + sink per file")
        add(task, "duckdb", duckdb_job(f"duckdb_{task}"),
            f"{'avg' if task == 'mean' else 'exact median'} over read_parquet([...]), then "
            f"COPY coalesce per file; ints rounded half to even; {duck_note}")
    add("ffill", "bigprep", bigprep_job("ffill"))
    add("ffill", "polars", lambda out: worker("polars_ffill", files=files, out=str(out)),
        "forward_fill().over(sensor_id, order_by=ts), sink to one file")
    add("ffill", "duckdb", duckdb_job("duckdb_ffill"),
        f"last_value(c IGNORE NULLS) OVER (PARTITION BY sensor_id ORDER BY ts ROWS "
        f"UNBOUNDED PRECEDING), one file, rows regrouped by sensor; {duck_note}")
    add("interpolate", "bigprep", bigprep_job("interpolate"))
    add("interpolate", "polars", lambda out: worker("polars_interpolate", files=files,
                                                    out=str(out)),
        "interpolate_by(ts).over(sensor_id) (sorts by ts itself), edges null, one file")
    add("interpolate", "duckdb fill() + edge mask", duckdb_job("duckdb_fill_inside"),
        "fill(c) OVER (PARTITION BY sensor_id ORDER BY ts), nulled where no valid value "
        f"before or after (last_value/first_value IGNORE NULLS): the same task; {duck_note}")
    add("interpolate", "duckdb fill()", duckdb_job("duckdb_fill"),
        "NOT THE SAME TASK: fill() also extrapolates the edges linearly (before the first "
        f"and after the last valid value of a sensor); {duck_note}")
    return entries


def tfidf_entries(corpora: dict, stats: dict, work: Path, args) -> list[Entry]:
    entries = []
    for name, (lang, options, params, jieba) in TFIDF.items():
        files, docs = corpora[lang], stats[lang]["docs"]
        base = work / "tfidf" / f"{len(entries)}"
        state, out, peer_out = base / "state.json", base / "vectors", base / "sklearn"
        made = {}  # bigprep's vocabulary size and weights in this round, for sklearn's check

        def check_bigprep(state=state, out=out, docs=docs, made=made):
            from bench_tfidf import output_nnz, state_summary

            rows, nnz = output_nnz(out)
            made.clear()
            made.update(features=state_summary(state)["features"], nnz=nnz)
            note = f"{made['features']:,} terms, {nnz:,} weights"
            return note + ("; rows ok" if rows == docs else f"; ROW COUNT {rows:,} != {docs:,}")

        def check_sklearn(peer_out=peer_out, made=made):
            got = json.loads((peer_out / "result.json").read_text())
            note = f"{got['features']:,} columns, {got['nnz']:,} weights"
            if made:
                same = (got["features"], got["nnz"]) == (made["features"], made["nnz"])
                note += ("; same shape and nnz as bigprep" if same
                         else "; SHAPE/NNZ DIFFER FROM bigprep")
            return note

        def clear(base=base, made=made):
            fresh(base)
            made.clear()

        fit = bigprep("tfidf", "fit", *files, "--text-column", "body", "--state", state,
                      "--out", out, "--quiet", *options)
        entries.append(Entry("tfidf", name, "bigprep", [("fit --out", fit)],
                             check=check_bigprep, before=clear,
                             note="tfidf fit --out " + " ".join(options or ["(defaults)"])
                                  + " (state saved, vectors written)"))
        sk_params = {**params, **({"tokenizer": "jieba.lcut", "token_pattern": None}
                                  if jieba else {})}
        entries.append(Entry("tfidf", name, "sklearn",
                             [("fit_transform", worker("sklearn_tfidf", files=files,
                                                       out=str(peer_out), params=params,
                                                       jieba=jieba))],
                             out=peer_out, check=check_sklearn,
                             note=f"TfidfVectorizer({_kwargs(sk_params)}).fit_transform, "
                                  "texts read into a list (timed), in memory"))
    return entries


def _kwargs(params: dict) -> str:
    def value(v):
        return v if v == "jieba.lcut" else repr(tuple(v) if isinstance(v, list) else v)
    return ", ".join(f"{k}={value(v)}" for k, v in params.items())


def train_entries(train, test, work: Path, args) -> list[Entry]:
    from bench_train import bigprep_train, settle

    model_dir, saved = work / "train" / "bigprep-model", work / "train" / "hand_loop.pkl"
    model_dir.parent.mkdir(parents=True, exist_ok=True)

    def before_bigprep():
        shutil.rmtree(model_dir, ignore_errors=True)
        settle(train)

    def before_hand():
        saved.unlink(missing_ok=True)
        settle(train)

    config = {"files": train, "epochs": args.epochs, "out": str(saved)}
    return [
        Entry("train", "logistic", "bigprep", [("train", bigprep_train(train, model_dir,
                                                                       args.epochs))],
              before=before_bigprep, note="bigprep train --model logistic (may stop early)"),
        Entry("train", "logistic", "hand loop",
              [("train", [PY, str(HERE / "bench_train.py"), "worker", "hand_loop",
                          json.dumps(config)])],
              before=before_hand,
              note="pandas read + get_dummies + StandardScaler/SGDClassifier partial_fit per "
                   "file"),
    ]


def small_entries(small_files, small_rows, work: Path) -> list[Entry]:
    sample = sorted(str(p) for p in (REPO / "sample_data" / "sensors").glob("*.parquet"))
    sample_rows = parquet_rows(sample)
    entries, floors = [], {}

    def add(task, tool, argv, out=None, rows=None, note="", floor=False):
        if floor:  # added first in its task
            floors[task] = f"small/{task}/{tool}"
        entries.append(Entry("small", task, tool, [(tool, argv)], out=out,
                             check=rows_check(out, rows) if out else None, note=note,
                             floor=floors.get(task)))

    add("start-up", "import polars, pyarrow.parquet",
        [PY, "-c", "import polars, pyarrow.parquet"], note="the floor", floor=True)
    add("start-up", "bigprep --help", bigprep("--help"))
    out = work / "out" / "small-sample-copy"
    add("README quick start (20k rows)", "polars scan/sink copy",
        impute_worker("polars_copy", sample, out), out, sample_rows, "the floor", floor=True)
    out = work / "out" / "small-quickstart"
    add("README quick start (20k rows)", "bigprep", bigprep("impute", "sample_data/sensors/",
                                                            "--out", out), out, sample_rows,
        "bigprep impute sample_data/sensors/ --out DIR, as in README.md (its summary "
        "printed to /dev/null)")
    label = f"{small_rows:,}-row impute"
    out = work / "out" / "small-copy"
    add(label, "polars scan/sink copy", impute_worker("polars_copy", small_files, out), out,
        small_rows, "the floor", floor=True)
    out = work / "out" / "small-mean"
    add(label, "bigprep --strategy mean", bigprep("impute", *small_files, "--out", out,
                                                  "--quiet", "--strategy", "mean"),
        out, small_rows)
    return entries


# --------------------------------------------------------------------------------------
# Running


def run_entry(entry: Entry, args) -> dict:
    if entry.out:
        fresh(entry.out)
    if entry.before:
        entry.before()
    os.sync()  # the previous run's writes are not flushed during this one
    result = {"seconds": 0.0, "peak_rss_gib": 0.0, "error": None, "steps": {}}
    for step, argv in entry.steps:
        group = None
        cmd, mem_cap = [str(a) for a in argv], None
        if entry.capped:
            group = memory_cgroup(int(args.cap_gb * 2**30))
            if group:
                cmd = in_cgroup(cmd, group)
            else:
                mem_cap = args.cap_gb
        r = measure(cmd, timeout=args.timeout, mem_cap_gb=mem_cap)
        if group:
            kills = cgroup_oom_kills(group)
            remove_cgroup(group)
            if kills and r["error"]:
                r["error"] = f"OOM kill (cgroup cap {args.cap_gb:g} GiB)"
        result["steps"][step] = r
        result["seconds"] += r["seconds"]
        result["peak_rss_gib"] = max(result["peak_rss_gib"], r["peak_rss_gib"])
        if r["error"]:
            result["error"] = r["error"] if len(entry.steps) == 1 else f"{step}: {r['error']}"
            break
    if not result["error"] and entry.check:
        try:
            result["check"] = entry.check()
        except (OSError, ValueError, KeyError) as exc:  # a bad output is a result too
            result["check"] = f"CHECK FAILED: {type(exc).__name__}: {exc}"[:200]
    if entry.out:
        shutil.rmtree(entry.out, ignore_errors=True)
    return result


def run_rounds(entries: list[Entry], args) -> None:
    for i in range(args.rounds):
        for entry in entries:
            print(f"round {i + 1}/{args.rounds}: {entry.key} ...", end="", file=sys.stderr,
                  flush=True)
            r = run_entry(entry, args)
            entry.rounds.append(r)
            print(f" {r['seconds']:.2f} s, {r['peak_rss_gib']:.2f} GiB"
                  + (f", {r['error']}" if r["error"] else ""), file=sys.stderr, flush=True)


def summarise(entries: list[Entry]) -> dict:
    """Per entry: median seconds of its finished rounds, the highest peak RSS, the notes."""
    summary = {}
    for e in entries:
        ok = [r for r in e.rounds if not r["error"]]
        failed = [r for r in e.rounds if r["error"]]
        s = {"seconds": statistics.median(r["seconds"] for r in ok) if ok else None,
             "peak_rss_gib": max((r["peak_rss_gib"] for r in e.rounds), default=None),
             "finished": len(ok), "rounds": len(e.rounds),
             "steps": {step: statistics.median(r["steps"][step]["seconds"] for r in ok)
                       for step, _ in e.steps} if ok else {},
             "step_peaks": {step: max(r["steps"][step]["peak_rss_gib"] for r in ok)
                            for step, _ in e.steps} if ok else {}}
        notes = []
        if failed:
            errors = list(dict.fromkeys(r["error"] for r in failed))
            where = "" if not ok else f" in {len(failed)} of {len(e.rounds)} rounds"
            notes.append(f"FAILED{where}: {'; '.join(errors)}")
        notes += list(dict.fromkeys(r["check"] for r in ok if r.get("check")))
        if e.note:
            notes.append(e.note)
        s["note"] = "; ".join(notes)
        summary[e.key] = s
    for e in entries:
        s = summary[e.key]
        floor = summary.get(e.floor, {}).get("seconds") if e.floor else None
        s["ratio"] = s["seconds"] / floor if floor and s["seconds"] is not None else None
    return summary


# --------------------------------------------------------------------------------------
# Reporting


def num(value, fmt="{:.2f}") -> str:
    return "—" if value is None else fmt.format(value)


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(header: list[str], align: str, rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(
        "---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio_table(entries, summary, first: str = "task") -> str:
    """Rows measured against a floor (impute, capped's ratios, small jobs)."""
    rows = []
    for e in entries:
        s = summary[e.key]
        rows.append([e.task, e.tool, num(s["seconds"]), num(s["ratio"]),
                     num(s["peak_rss_gib"]), s["note"]])
    return table([first, "tool", "seconds", "ratio to floor", "peak RSS GiB", "note"],
                 "llrrrl", rows)


def capped_table(entries, summary) -> str:
    rows = []
    for e in entries:
        s = summary[e.key]
        done = f"{s['finished']}/{s['rounds']}"
        rows.append([e.task, e.tool, "yes" if s["finished"] == s["rounds"] else
                     ("no" if not s["finished"] else f"partly ({done})"),
                     num(s["seconds"]), num(s["ratio"]), num(s["peak_rss_gib"]), s["note"]])
    return table(["task", "tool", "finished", "seconds", "ratio to floor", "peak RSS GiB",
                  "note"], "lllrrrl", rows)


def tfidf_table(entries, summary, stats) -> tuple[str, dict]:
    rows, ratios = [], {}

    def line(name, lang, tool, seconds, peak, note, ratio_cell=""):
        docs, text = stats[lang]["docs"], stats[lang]["bytes"]
        return [name, tool, num(seconds), num(docs / seconds if seconds else None, "{:,.0f}"),
                num(text / 1e6 / seconds if seconds else None), num(peak), ratio_cell, note]

    for name, (lang, *_rest) in TFIDF.items():
        ours = summary[f"tfidf/{name}/bigprep"]
        theirs = summary[f"tfidf/{name}/sklearn"]
        ratio = (ours["seconds"] / theirs["seconds"]
                 if ours["seconds"] and theirs["seconds"] else None)
        ratios[name] = ratio

        for step in ours["steps"] if len(ours["steps"]) > 1 else ():
            rows.append(line(name, lang, f"· bigprep tfidf {step}", ours["steps"].get(step),
                             ours["step_peaks"].get(step), ""))
        verdict = "" if ratio is None else (" (goal met)" if ratio <= TFIDF_GOAL
                                            else f" (goal ≤ {TFIDF_GOAL})")
        rows.append(line(name, lang, "bigprep tfidf fit --out", ours["seconds"], ours["peak_rss_gib"],
                         ours["note"], num(ratio) + verdict))
        rows.append(line(name, lang, "sklearn TfidfVectorizer", theirs["seconds"], theirs["peak_rss_gib"],
                         theirs["note"], "1.00" if theirs["seconds"] else "—"))
    return table(["corpus", "tool", "seconds", "docs/s", "MB/s of text", "peak RSS GiB",
                  "bigprep / sklearn (seconds)", "note"], "llrrrrrl", rows), ratios


def train_table(entries, summary, quality, rows_count) -> tuple[str, float | None]:
    rows, speed = [], {}
    for e in entries:
        s, q = summary[e.key], quality.get(e.key, {})
        epochs = q.get("epochs")
        rps = rows_count * epochs / s["seconds"] if s["seconds"] and epochs else None
        speed[e.tool] = rps
        rows.append([e.tool, num(epochs, "{:d}"), num(s["seconds"]), num(rps, "{:,.0f}"),
                     num(s["peak_rss_gib"]), num(q.get("auc"), "{:.4f}"),
                     "; ".join(filter(None, [s["note"], q.get("note")]))])
    ratio = (speed["bigprep"] / speed["hand loop"]
             if speed.get("bigprep") and speed.get("hand loop") else None)
    return table(["tool", "epochs", "seconds", "rows/s (rows x epochs / s)", "peak RSS GiB",
                  "test ROC AUC", "note"], "lrrrrrl", rows), ratio


def train_quality(entries, train, test, work: Path, args) -> dict:
    """Epochs and test ROC AUC of the last round's models (not timed)."""
    from bench_train import bigprep_evaluate, history, score

    quality = {}
    for e in entries:
        last = e.rounds[-1] if e.rounds else {"error": "not run"}
        if last["error"]:
            quality[e.key] = {}
            continue
        print(f"scoring {e.key} ...", file=sys.stderr, flush=True)
        if e.tool == "bigprep":
            model_dir = work / "train" / "bigprep-model"
            losses = [h["validation_loss"] for h in history(model_dir)]
            auc, _, error = bigprep_evaluate(model_dir, test, args.timeout)
            note = f"early stop after {len(losses)} epochs" if len(losses) < args.epochs else ""
            quality[e.key] = {"epochs": len(losses) or None, "auc": auc,
                              "note": "; ".join(filter(None, [error, note,
                                                              "AUC from bigprep evaluate"]))}
        else:
            auc, _info = score(work / "train" / "hand_loop.pkl", test)
            quality[e.key] = {"epochs": args.epochs, "auc": auc,
                              "note": "AUC: sklearn roc_auc_score"}
    return quality


def machine() -> dict:
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 2**20
    except OSError:
        pass
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "memory_gib": mem,
            "python": platform.python_version(), "versions": versions,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes")}


def header_line(m: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    return (f"{m['date']} · {m['platform']}, {m['cpus']} CPUs, {num(m['memory_gib'], '{:.0f}')}"
            f" GiB RAM · Python {m['python']} · {versions}")


# --------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data_options(parser, rows=8_000_000, files=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(DEFAULT_SECTIONS),
                        help=f"comma-separated sections of {','.join(SECTIONS)} "
                             f"(default: all but capped)")
    parser.add_argument("--docs", type=int, default=366_000,
                        help="documents per corpus (English and Chinese)")
    parser.add_argument("--doc-files", type=int, default=16)
    parser.add_argument("--train-rows", type=int, default=None,
                        help="training rows (default: --rows, at most 5,000,000)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--small-rows", type=int, default=1_000_000,
                        help="rows of the small impute job (at most --rows)")
    parser.add_argument("--cap-gb", type=float, default=1.5,
                        help="hard memory cap per process in the capped section (GiB)")
    parser.add_argument("--duckdb-memory-limit", default="1GB",
                        help="DuckDB memory_limit in the capped section")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="keep generated data here and reuse it (named by size); "
                             "default: a temp dir, removed afterwards")
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="scratch dir for outputs (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write all results here")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {SECTIONS}")

    began = time.perf_counter()
    m = machine()
    with scratch_dir(args.work, "compare") as scratch:
        cache = args.cache.expanduser() if args.cache else scratch / "data"

        def sensors(rows, files, data=None):
            folder = data or cache / f"sensors-{rows}x{files}-seed{args.seed}"
            found = dataset(argparse.Namespace(rows=rows, files=files, seed=args.seed,
                                               data=folder), scratch)
            return found, parquet_rows(found)

        plan: dict[str, list[Entry]] = {}
        info: dict = {"machine": m, "args": {k: str(v) if isinstance(v, Path) else v
                                             for k, v in vars(args).items()}}
        if "impute" in only or "capped" in only:
            files, rows = sensors(args.rows, args.files, args.data.expanduser()
                                  if args.data else None)
            info["impute"] = {"rows": rows, "files": len(files)}
            for section in ("impute", "capped"):
                if section in only:
                    plan[section] = impute_entries(section, files, rows, scratch, args)
            if "capped" in only:
                info["capped"] = {"rows": rows, "files": len(files), "cap_gb": args.cap_gb,
                                  "holder": cgroup_support(args.cap_gb)
                                  or f"RLIMIT_AS {args.cap_gb:g} GiB (no cgroup could be "
                                     "made: virtual memory, not RSS, is capped)"}
        stats = {}
        if "tfidf" in only:
            from bench_tfidf import corpus, corpus_stats

            corpora = {lang: corpus(cache / f"text-{lang}-{args.docs}x{args.doc_files}"
                                            f"-seed{args.seed}",
                                    args.docs, args.doc_files, args.seed, lang)
                       for lang in ("en", "zh")}
            stats = {lang: corpus_stats(f) for lang, f in corpora.items()}
            info["tfidf"] = {"corpora": stats}
            plan["tfidf"] = tfidf_entries(corpora, stats, scratch, args)
        if "train" in only:
            from bench_train import TEST_ROWS, files_in, write_test, write_train

            train_rows = args.train_rows or min(args.rows, 5_000_000)
            folder = cache / f"train-{train_rows}x{args.files}-seed{args.seed}"
            train = files_in(folder / "train",
                             lambda d: write_train(d, train_rows, args.files, args.seed))
            train_rows = parquet_rows(train)
            test_rows = min(TEST_ROWS, max(train_rows // 10, 10_000))
            test = files_in(folder / "test", lambda d: write_test(d, test_rows, args.seed))
            info["train"] = {"rows": train_rows, "files": len(train), "test_rows": test_rows,
                             "epochs": args.epochs}
            plan["train"] = train_entries(train, test, scratch, args)
        if "small" in only:
            small_rows = min(args.small_rows, args.rows)
            small_files, small_rows = sensors(small_rows, max(1, small_rows // 250_000))
            info["small"] = {"rows": small_rows, "files": len(small_files)}
            plan["small"] = small_entries(small_files, small_rows, scratch)

        entries = [e for section in SECTIONS for e in plan.get(section, [])]
        run_rounds(entries, args)
        summary = summarise(entries)
        quality = (train_quality(plan["train"], train, test, scratch, args)
                   if "train" in plan else {})

    rounds = f"median of {args.rounds} round{'s' * (args.rounds > 1)}"
    print(f"\n# bigprep vs peers\n\n{header_line(m)}\n\nEvery row is one whole process, "
          f"run once per round, rounds interleaved; seconds: the "
          f"{rounds}; peak RSS: the highest over the rounds of the process's own VmHWM. "
          f"Whole run {time.perf_counter() - began:.0f} s.")
    short = f"{m['cpus']} CPUs, {num(m['memory_gib'], '{:.0f}')} GiB"
    results = {}
    if "impute" in plan:
        i = info["impute"]
        floor = summary["impute/copy/polars scan/sink"]["seconds"]
        print(f"\n## Impute: {i['rows']:,} rows in {i['files']} files, {rounds}, {short}; "
              f"floor (polars copy) {num(floor)} s\n")
        print(ratio_table(plan["impute"], summary))
    if "capped" in plan:
        c = info["capped"]
        print(f"\n## Capped at {args.cap_gb:g} GiB: {c['rows']:,} rows in {c['files']} files, "
              f"{rounds}, {short}; held by {c['holder']}; DuckDB memory_limit "
              f"{args.duckdb_memory_limit}\n")
        print(capped_table(plan["capped"], summary))
    if "tfidf" in plan:
        text, ratios = tfidf_table(plan["tfidf"], summary, stats)
        results["tfidf_ratio_bigprep_to_sklearn"] = ratios
        corpora = "; ".join(f"{lang}: {s['docs']:,} documents, {s['bytes'] / 1e6:,.1f} MB"
                            for lang, s in stats.items())
        print(f"\n## TF-IDF: {corpora}; {args.doc_files} files each, {rounds}, {short}\n")
        print(text)
    if "train" in plan:
        t = info["train"]
        text, ratio = train_table(plan["train"], summary, quality, t["rows"])
        results["train_throughput_bigprep_to_hand_loop"] = ratio
        print(f"\n## Train: {t['rows']:,} rows in {t['files']} files (time order), "
              f"{t['test_rows']:,} test rows, {args.epochs} epochs, {rounds}, {short}\n")
        print(text)
        print(f"\nbigprep / hand loop throughput: {num(ratio, '{:.2f}x')}")
    if "small" in plan:
        print(f"\n## Small jobs: {rounds}, {short}\n")
        print(ratio_table(plan["small"], summary, first="job"))
    if args.json:
        args.json.write_text(json.dumps({
            **info, **results, "total_seconds": time.perf_counter() - began,
            "entries": [{"section": e.section, "task": e.task, "tool": e.tool,
                         "note": e.note, "floor": e.floor, "summary": summary[e.key],
                         "quality": quality.get(e.key), "rounds": e.rounds}
                        for e in entries]}, indent=1, default=str))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        JOBS[sys.argv[2]](json.loads(sys.argv[3]))
    else:
        main()
