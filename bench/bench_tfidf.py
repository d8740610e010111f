"""Time bigprep's out-of-core TF-IDF against scikit-learn and gensim, each in its own process.

Usage::

    python bench/bench_tfidf.py                          # 366,000 docs in 16 files, temp dir
    python bench/bench_tfidf.py --docs 20000 --files 4   # smoke test, well under a minute
    python bench/bench_tfidf.py --data ~/text-366k --json results.json

Every timed row is one subprocess run by ``measure`` from ``bench_impute.py``: wall
time and that process's own peak RSS (its VmHWM, polled while it runs). The corpus is
made by ``sample_data/make_text.py`` (synthetic English news-like documents, about
355 bytes of text each). Rows: bigprep ``tfidf fit`` and ``tfidf transform`` with
default parameters; scikit-learn's ``TfidfVectorizer.fit_transform`` and
``HashingVectorizer(alternate_sign=False, norm=None)`` + ``TfidfTransformer`` in memory;
gensim ``Dictionary`` + ``TfidfModel`` over the same tokens, streaming (another idf);
bigprep ``tfidf fit`` on a corpus ``--scale`` times bigger, to show its memory stays
flat; and a parity check: on a 5,000-document subset, bigprep's vectors equal
``TfidfVectorizer``'s to 1e-12.

Peers run as ``python bench_tfidf.py worker JOB OUT_DIR FILE...``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_impute import measure, scratch_dir  # one measuring helper for every bench

REPO = HERE.parent
MAKE_TEXT = REPO / "sample_data" / "make_text.py"
TEXT = "body"
PARITY_DOCS = 5_000
PARITY_TOLERANCE = 1e-12
VERSIONED = ["bigprep", "polars", "pyarrow", "scikit-learn", "scipy", "numpy", "gensim"]


# --------------------------------------------------------------------------------------
# Peer jobs: each runs in a fresh process as `worker JOB OUT_DIR FILE...` and writes
# OUT_DIR/result.json with the shape of what it made.


def read_texts(files) -> list[str]:
    """The text column of every file, in order, nulls as empty documents (as bigprep)."""
    import pyarrow.parquet as pq

    texts = []
    for f in files:
        texts.extend("" if t is None else t
                     for t in pq.read_table(f, columns=[TEXT])[TEXT].to_pylist())
    return texts


def sklearn_tfidf(files, out):
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer().fit_transform(read_texts(files))
    return {"docs": matrix.shape[0], "features": matrix.shape[1], "nnz": int(matrix.nnz)}


def sklearn_hashing(files, out):
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    counts = HashingVectorizer(alternate_sign=False, norm=None).fit_transform(read_texts(files))
    matrix = TfidfTransformer().fit_transform(counts)
    return {"docs": matrix.shape[0], "features": matrix.shape[1], "nnz": int(matrix.nnz)}


def gensim_tfidf(files, out):
    """The gensim idiom: stream the corpus twice (dictionary, then vectors), with the
    same tokens as scikit-learn and bigprep (TfidfVectorizer's analyzer)."""
    import pyarrow.parquet as pq
    from gensim.corpora import Dictionary
    from gensim.models import TfidfModel
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyze = TfidfVectorizer().build_analyzer()

    def token_lists():
        for f in files:
            for text in pq.read_table(f, columns=[TEXT])[TEXT].to_pylist():
                yield analyze(text or "")

    dictionary = Dictionary(prune_at=None)
    dictionary.add_documents(token_lists(), prune_at=None)
    model = TfidfModel(dictionary=dictionary)  # idf = log2(N / df), L2 normalised
    docs = nnz = 0
    for tokens in token_lists():
        nnz += len(model[dictionary.doc2bow(tokens)])
        docs += 1
    return {"docs": docs, "features": len(dictionary), "nnz": nnz}


JOBS = {f.__name__: f for f in [sklearn_tfidf, sklearn_hashing, gensim_tfidf]}


def worker(job: str, out: Path, files: list[str]) -> None:
    result = JOBS[job](files, out)
    (out / "result.json").write_text(json.dumps(result))


# --------------------------------------------------------------------------------------
# Data


def corpus_stats(files) -> dict:
    """Documents and UTF-8 bytes of text in these files."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    docs = text_bytes = 0
    for f in files:
        column = pq.read_table(f, columns=[TEXT])[TEXT]
        docs += len(column)
        text_bytes += pc.sum(pc.binary_length(column)).as_py() or 0
    return {"docs": docs, "bytes": text_bytes}


def corpus(folder: Path, docs: int, files: int, seed: int, lang: str = "en") -> list[str]:
    """The *.parquet files in folder, generated there first if it has none."""
    found = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not found:
        print(f"generating {docs:,} {lang} documents in {files} files into {folder} ...",
              file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(MAKE_TEXT), str(folder), "--lang", lang,
                        "--docs", str(docs), "--files", str(files), "--seed", str(seed),
                        "--quiet"], check=True)
        found = sorted(folder.glob("*.parquet"))
    return [str(f) for f in found]


def subset(files, folder: Path, docs: int) -> list[str]:
    """The first ``docs`` documents of the corpus, in two files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables, left = [], docs
    for f in files:
        if left <= 0:
            break
        table = pq.read_table(f)
        tables.append(table.slice(0, left))
        left -= tables[-1].num_rows
    table = pa.concat_tables(tables)
    folder.mkdir(parents=True, exist_ok=True)
    half = table.num_rows // 2
    paths = [folder / "part-00000.parquet", folder / "part-00001.parquet"]
    pq.write_table(table.slice(0, half), paths[0], compression="zstd")
    pq.write_table(table.slice(half), paths[1], compression="zstd")
    return [str(p) for p in paths]


# --------------------------------------------------------------------------------------
# Running


def bigprep_fit(files, state):
    return [sys.executable, "-m", "bigprep", "tfidf", "fit", *files, "--text-column", TEXT,
            "--state", str(state), "--quiet"]


def bigprep_transform(files, state, out):
    return [sys.executable, "-m", "bigprep", "tfidf", "transform", *files, "--state",
            str(state), "--out", str(out), "--quiet"]


def peer(job, files, out):
    return [sys.executable, str(Path(__file__).resolve()), "worker", job, str(out), *files]


def output_nnz(folder: Path) -> tuple[int, int]:
    """Rows and stored weights in a bigprep transform output folder."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows = nnz = 0
    for f in sorted(folder.rglob("*.parquet")):
        column = pq.read_table(f, columns=["tfidf_indices"])["tfidf_indices"]
        rows += len(column)
        nnz += pc.sum(pc.list_value_length(column)).as_py() or 0
    return rows, nnz


def state_summary(state: Path) -> dict:
    data = json.loads(state.read_text())["payload"]  # the state file's envelope
    return {"docs": data["documents"], "features": data["vocabulary_size"]}


def row(task, tool, result, stats, note=""):
    r = {"task": task, "tool": tool, **result, "docs": stats["docs"],
         "text_bytes": stats["bytes"], "note": note}
    if result["error"]:
        r["note"] = f"FAILED, {result['error']}" + (f"; {note}" if note else "")
    return r


def run(cmd, args):
    return measure(cmd, timeout=args.timeout)


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def run_all(files, stats, big_files, big_stats, work: Path, args) -> list[dict]:
    results = []

    def say(what):
        print(f"running {what} ...", file=sys.stderr, flush=True)

    # bigprep fit, transform
    state = work / "state.json"
    say("bigprep tfidf fit")
    fit = run(bigprep_fit(files, state), args)
    vocab = state_summary(state) if not fit["error"] else None
    results.append(row("fit", "bigprep tfidf fit", fit, stats,
                       f"{vocab['features']:,} terms" if vocab else ""))
    out = fresh(work / "out")
    say("bigprep tfidf transform")
    transform = run(bigprep_transform(files, state, out), args) if vocab else {
        "seconds": 0.0, "peak_rss_gib": 0.0, "exit_code": None, "error": "fit failed"}
    big_nnz = None
    note = "one Parquet file per input, zstd"
    if not transform["error"]:
        written, big_nnz = output_nnz(out)
        note += (f"; {big_nnz:,} weights; rows ok" if written == stats["docs"]
                 else f"; ROW COUNT {written:,} != {stats['docs']:,}")
    results.append(row("transform", "bigprep tfidf transform", transform, stats, note))
    both = {"seconds": fit["seconds"] + transform["seconds"],
            "peak_rss_gib": max(fit["peak_rss_gib"], transform["peak_rss_gib"]),
            "exit_code": transform["exit_code"], "error": fit["error"] or transform["error"]}
    results.append(row("fit + transform", "bigprep (sum of the two)", both, stats,
                       "two passes over the files, vectors written"))
    shutil.rmtree(out, ignore_errors=True)

    # peers
    peers = [
        ("sklearn_tfidf", "fit_transform", "sklearn TfidfVectorizer",
         "in memory (texts in a list), matrix not written"),
        ("sklearn_hashing", "fit_transform", "sklearn HashingVectorizer + TfidfTransformer",
         "in memory; 2**20 hashed columns, no vocabulary"),
        ("gensim_tfidf", "fit + transform", "gensim Dictionary + TfidfModel",
         "streaming, 2 passes, sklearn's tokens; idf = log2(N/df), unsmoothed: other weights"),
    ]
    for job, task, tool, note in peers:
        if job == "gensim_tfidf" and not has("gensim"):
            results.append({"task": task, "tool": tool, "seconds": None, "peak_rss_gib": None,
                            "exit_code": None, "error": "gensim not installed",
                            "docs": stats["docs"], "text_bytes": stats["bytes"],
                            "note": "SKIPPED, gensim not installed (pip install gensim)"})
            continue
        out = fresh(work / "out")
        say(tool)
        result = run(peer(job, files, out), args)
        notes = [note]
        if not result["error"]:
            made = json.loads((out / "result.json").read_text())
            notes.append(f"{made['features']:,} columns, {made['nnz']:,} weights")
            if job == "sklearn_tfidf" and vocab:
                same = (made["features"], made["nnz"]) == (vocab["features"], big_nnz)
                notes.append("same shape and nnz as bigprep" if same
                             else "SHAPE/NNZ DIFFER FROM bigprep")
        results.append(row(task, tool, result, stats, "; ".join(notes)))
    shutil.rmtree(work / "out", ignore_errors=True)

    # bigprep at scale: fit only
    if big_files:
        big_state = work / "state-big.json"
        say(f"bigprep tfidf fit at {args.scale}x")
        big = run(bigprep_fit(big_files, big_state), args)
        note = ""
        if not big["error"] and not fit["error"]:
            big_vocab = state_summary(big_state)
            note = (f"{big_vocab['features']:,} terms; peak RSS 1x {fit['peak_rss_gib']:.2f} "
                    f"GiB -> {args.scale}x {big['peak_rss_gib']:.2f} GiB "
                    f"({big['peak_rss_gib'] / fit['peak_rss_gib']:.2f}x memory for "
                    f"{big_stats['docs'] / stats['docs']:.1f}x documents)")
        results.append(row(f"fit ({args.scale}x corpus)", "bigprep tfidf fit", big, big_stats,
                           note))

    results.append(parity(files, work / "parity", args))
    return results


def parity(files, work: Path, args) -> dict:
    """bigprep fit + transform on a subset vs TfidfVectorizer.fit_transform: max |diff|."""
    import numpy as np
    import polars as pl
    from sklearn.feature_extraction.text import TfidfVectorizer

    sys.path.insert(0, str(REPO))  # the working copy, as `python -m bigprep` from REPO
    from bigprep.api.text import TfidfVectorizer as Saved
    from bigprep.ops.tfidf.vectors import to_csr
    from bigprep.ops.tfidf.vocabulary import ID
    from bigprep.state.counts import TERM

    print("running parity check ...", file=sys.stderr, flush=True)
    fresh(work)
    part = subset(files, work / "data", args.parity_docs)
    stats = corpus_stats(part)
    state, out = work / "state.json", work / "out"
    fit = run(bigprep_fit(part, state), args)
    transform = run(bigprep_transform(part, state, out), args) if not fit["error"] else fit
    both = {"seconds": fit["seconds"] + (transform["seconds"] if transform is not fit else 0),
            "peak_rss_gib": max(fit["peak_rss_gib"], transform["peak_rss_gib"]),
            "exit_code": transform["exit_code"], "error": fit["error"] or transform["error"]}
    task, tool = f"parity ({stats['docs']:,} docs)", "bigprep vs TfidfVectorizer"
    if both["error"]:
        return row(task, tool, both, stats)
    vectorizer = TfidfVectorizer()
    expected = vectorizer.fit_transform(read_texts(part))
    loaded = Saved.load(str(state)).state_
    got = to_csr(pl.concat([pl.read_parquet(f) for f in
                            sorted(str(p) for p in out.glob("*.parquet"))]), loaded.n_features)
    vocab = loaded.vocabulary.sort(ID)[TERM].to_list()
    same_vocab = vocab == list(vectorizer.get_feature_names_out())
    if got.shape != expected.shape:
        diff = float("inf")
    else:
        delta = abs(got - expected)
        diff = float(delta.max()) if delta.nnz else 0.0
    ok = same_vocab and diff <= PARITY_TOLERANCE and bool(np.isfinite(diff))
    note = (f"{'OK' if ok else 'MISMATCH'}: max |diff| {diff:.1e} (tolerance "
            f"{PARITY_TOLERANCE:g}); vocabulary {'equal' if same_vocab else 'DIFFERS'}; "
            f"shape {got.shape[0]:,} x {got.shape[1]:,}")
    result = row(task, tool, both, stats, note)
    result.update(max_abs_diff=diff, vocabulary_equal=same_vocab, parity_ok=ok)
    return result


def has(package: str) -> bool:
    try:
        version(package)
    except PackageNotFoundError:
        return False
    return True


# --------------------------------------------------------------------------------------
# Reporting


def markdown(results) -> str:
    lines = ["| task | tool | seconds | docs/s | MB/s of text | peak RSS GiB | note |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in results:
        ok = r["seconds"] is not None and not r["error"]
        seconds = f"{r['seconds']:.2f}" if ok else "—"
        docs_s = f"{r['docs'] / r['seconds']:,.0f}" if ok else "—"
        mb_s = f"{r['text_bytes'] / 1e6 / r['seconds']:.2f}" if ok else "—"
        rss = f"{r['peak_rss_gib']:.2f}" if r["peak_rss_gib"] is not None else "—"
        note = r["note"].replace("|", "\\|")
        lines.append(f"| {r['task']} | {r['tool']} | {seconds} | {docs_s} | {mb_s} | {rss} | "
                     f"{note} |")
    return "\n".join(lines)


def throughput_ratio(results) -> float | None:
    """bigprep fit+transform docs/s over TfidfVectorizer's (its seconds over ours)."""
    ours = next((r for r in results if r["tool"] == "bigprep (sum of the two)"), None)
    theirs = next((r for r in results if r["tool"] == "sklearn TfidfVectorizer"), None)
    if not ours or not theirs or ours["error"] or theirs["error"]:
        return None
    return theirs["seconds"] / ours["seconds"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=366_000)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=4,
                        help="also fit bigprep on a corpus this many times bigger (0: skip)")
    parser.add_argument("--parity-docs", type=int, default=PARITY_DOCS)
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="reuse the Parquet files in DIR (the bigger corpus in DIR/xSCALE), "
                             "or generate them there; default: a temp dir, removed afterwards")
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="scratch dir for states and outputs (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    with scratch_dir(args.work, "tfidf") as scratch:
        data = args.data.expanduser() if args.data else scratch / "data"
        files = corpus(data, args.docs, args.files, args.seed)
        stats = corpus_stats(files)
        big_files, big_stats = [], None
        if args.scale > 1:
            big_files = corpus(data / f"x{args.scale}", stats["docs"] * args.scale,
                               len(files) * args.scale, args.seed)
            big_stats = corpus_stats(big_files)
        results = run_all(files, stats, big_files, big_stats, scratch / "work", args)

    ratio = throughput_ratio(results)
    print(f"\n{stats['docs']:,} documents, {stats['bytes'] / 1e6:,.1f} MB of text in "
          f"{len(files)} files; {os.cpu_count()} CPUs; run took "
          f"{time.perf_counter() - began:.0f} s\n")
    print(markdown(results))
    if ratio is not None:
        print(f"\nbigprep fit + transform throughput / TfidfVectorizer.fit_transform's: "
              f"{ratio:.2f}")
    if args.json:
        args.json.write_text(json.dumps({
            "docs": stats["docs"], "text_bytes": stats["bytes"], "files": len(files),
            "scale": args.scale, "scaled": big_stats, "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "versions": {name: version(name) for name in VERSIONED if has(name)},
            "timeout": args.timeout, "throughput_ratio_vs_tfidfvectorizer": ratio,
            "results": results,
        }, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], Path(sys.argv[3]), sys.argv[4:])
    else:
        main()
