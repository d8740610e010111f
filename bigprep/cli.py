"""The ``bigprep`` command line: thin click commands over the library.

Commands parse options, call the library and report; they do no arithmetic.
A ``BigprepError`` becomes one clear message on stderr and exit code 1.
"""

from __future__ import annotations

import functools
import json
import sys

import click

from .dataset import DEFAULT_CHUNK_ROWS
from .errors import BigprepError
from .executor import Executor
from .storage import options_from


def _console():
    from rich.console import Console

    return Console(file=sys.stderr)


def execution_options(fn):
    """Options every data command shares."""
    @click.option("--chunk-rows", type=click.IntRange(min=1), default=DEFAULT_CHUNK_ROWS,
                  show_default=True, help="Rows per chunk; memory grows with it.")
    @click.option("--scheduler", envvar="BIGPREP_SCHEDULER", default=None, metavar="ADDRESS",
                  help="Run on this Dask distributed scheduler (e.g. tcp://host:8786; "
                       "also $BIGPREP_SCHEDULER). Default: threads on this machine.")
    @click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
                  help="Start a local Dask cluster of N worker processes for this run.")
    @click.option("--storage-option", "storage_option", multiple=True, metavar="KEY=VALUE",
                  help="Option for s3://, gs://, ... paths (e.g. endpoint_url=http://host:9000,"
                       " anon=true, profile=NAME); also $BIGPREP_STORAGE_OPTIONS as JSON.")
    @click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
    @functools.wraps(fn)
    def wrapper(*args, chunk_rows, scheduler, workers, storage_option, quiet, **kwargs):
        try:
            storage = options_from(storage_option)
            executor = Executor(scheduler, workers=workers,
                                progress=not quiet and sys.stderr.isatty(),
                                log=None if quiet else _console().print)
        except BigprepError as err:
            raise click.ClickException(str(err)) from None
        try:
            return fn(*args, chunk_rows=chunk_rows, executor=executor, quiet=quiet,
                      storage=storage, **kwargs)
        except BigprepError as err:
            raise click.ClickException(str(err)) from None
        finally:
            executor.close()
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bigprep")
def main():
    """Prepare Parquet data that is too large for memory.

    \b
    Example:
      bigprep impute 'data/*.parquet' --out cleaned/
      bigprep profile data/
      bigprep tfidf fit 'docs/*.parquet' --text-column body --state tfidf.json
    """


def _parse_columns(values: tuple[str, ...]) -> dict[str, str]:
    columns: dict[str, str] = {}
    for item in values:
        name, sep, chain = item.partition("=")
        if not sep or not name.strip() or not chain.strip():
            raise click.BadParameter(f"{item!r}: use COLUMN=STRATEGY, e.g. temp=median",
                                     param_hint="--column")
        if name.strip() in columns:
            raise click.BadParameter(f"column {name.strip()!r} given twice; chain strategies "
                                     "with commas instead: temp=interpolate,ffill",
                                     param_hint="--column")
        columns[name.strip()] = chain.strip()
    return columns


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=False, metavar="DIR",
              help="Output folder; each input file is written to the same relative path.")
@click.option("--strategy", "-s", metavar="S",
              help="Default strategy for every column with nulls that S can serve: "
                   "constant:V, mean, median, mode, ffill, bfill, interpolate, or a comma chain.")
@click.option("--column", "-c", "column", multiple=True, metavar="COL=S",
              help="Strategy (chain) for one column; repeat for more columns.")
@click.option("--group-by", metavar="COL", help="ffill/bfill/interpolate within groups of COL.")
@click.option("--order-by", metavar="COL",
              help="Rows are ordered by COL (checked, not sorted); interpolate uses its values.")
@click.option("--add-indicator", is_flag=True, help="Add a boolean COL__missing per imputed column.")
@click.option("--state", "state_path", metavar="FILE",
              help="Save the fitted state here (JSON, plus FILE.npz for large arrays).")
@click.option("--update", is_flag=True,
              help="Load --state, merge the new partitions into it, apply, save it back.")
@click.option("--compression", default="zstd", show_default=True,
              type=click.Choice(["zstd", "snappy", "gzip", "lz4", "brotli", "none"]))
@execution_options
def impute(inputs, out, strategy, column, group_by, order_by, add_indicator, state_path, update,
           compression, chunk_rows, executor, quiet, storage):
    """Fill the nulls of Parquet partitions, out of core.

    INPUTS are Parquet files, folders (every *.parquet below) or glob patterns,
    taken in natural order. Without --strategy and --column: mean for numeric
    columns and mode for the others. Chains fill what is still null, in order.

    \b
    Example:
      bigprep impute sample_data/sensors/ --out cleaned/
      bigprep impute 'data/*.parquet' --out cleaned/ --strategy median
      bigprep impute data/ --out cleaned/ --column temp=interpolate,ffill \\
          --column status=mode --column note=constant:unknown \\
          --group-by sensor_id --order-by ts --add-indicator
      bigprep impute data/*.parquet --out cleaned/ --state impute-state.json
      bigprep impute new/*.parquet --out cleaned/ --state impute-state.json --update
    """
    from .impute.job import impute as run_impute

    if out is None and not state_path:
        raise click.UsageError("give --out DIR (and/or --state FILE to save the fitted state)")
    report = run_impute(inputs, out, strategy=strategy, columns=_parse_columns(column),
                        group_by=group_by, order_by=order_by, add_indicator=add_indicator,
                        state_path=state_path, update=update, chunk_rows=chunk_rows,
                        compression=None if compression == "none" else compression,
                        executor=executor, storage_options=storage)
    if not quiet:
        print_impute_summary(report, out, state_path)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_impute_summary(report, out, state_path) -> None:
    from rich.table import Table

    state = report.state
    title = f"bigprep impute: {state.rows:,} rows, {len(report.files)} files written"
    table = Table(title=title, title_justify="left")
    for head in ("column", "strategy", "fill values", "nulls filled", "nulls left"):
        table.add_column(head)
    for plan in report.applied:
        values = []
        for kind in plan.stats:
            value, written = state.fill_value(plan.column, kind), report.fills[(plan.column, kind)]
            text = _fmt(value)
            if value != written:  # an integer column: the fill as rounded and written
                text += f" -> {written}"
            values.append(f"{kind}={text}")
        if plan.constant is not None:
            values.append(f"constant={plan.constant}")
        if plan.scans:
            values.append("from neighbours")
        filled = f"{report.filled(plan.column):,}" if report.files else "-"
        left = f"{report.left(plan.column):,}" if report.files else "-"
        table.add_row(plan.column, ",".join(map(str, plan.steps)), "; ".join(values), filled,
                      left)
    console = _console()
    console.print(table)
    if report.defaulted:
        console.print("No --strategy or --column given: mean for numeric columns, mode for "
                      "the others (scikit-learn's defaults).")
    reasons: dict[str, list[str]] = {}
    for name, why in report.skipped.items():
        reasons.setdefault(why, []).append(name)
    for why, names in reasons.items():
        console.print(f"left alone ({why}): {', '.join(names)}")
    if out:
        console.print(f"output: {out}")
    if state_path:
        console.print(f"state saved: {state_path}")


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout instead of a table.")
@execution_options
def profile(inputs, as_json, chunk_rows, executor, quiet, storage):
    """Show what is missing where: per column type, nulls, null share, the
    longest run of nulls, and nulls per partition.

    \b
    Example:
      bigprep profile sample_data/sensors/
      bigprep profile 'data/*.parquet' --json > profile.json
    """
    from .profile import profile as run_profile

    result = run_profile(inputs, chunk_rows=chunk_rows, executor=executor,
                         storage_options=storage)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['rows']:,} rows in {len(result['partitions'])} partitions",
                  title_justify="left")
    for head in ("column", "type", "nulls", "share", "longest run", "nulls per partition"):
        table.add_column(head)
    for name, col in result["columns"].items():
        per = col["nulls_per_partition"]
        shown = " ".join(map(str, per[:12])) + (" ..." if len(per) > 12 else "")
        table.add_row(name, col["type"], f"{col['nulls']:,}", f"{col['null_share']:.1%}",
                      f"{col['longest_null_run']:,}", shown)
    Console().print(table)



# --- tfidf ---------------------------------------------------------------------------

def _number(text: str):
    """``5`` is a count of documents, ``0.5`` a proportion (as scikit-learn)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise click.BadParameter(f"{text!r}: give a count (5) or a proportion (0.5)") \
                from None


def _ngram(text: str) -> tuple[int, int]:
    try:
        low, _, high = text.partition(",")
        pair = (int(low), int(high or low))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use MIN,MAX such as 1,2") from None
    if not 1 <= pair[0] <= pair[1]:
        raise click.BadParameter(f"{text!r}: need 1 <= MIN <= MAX")
    return pair


def _stop_words(text: str | None):
    if not text:
        return None
    if text == "english":
        return "english"
    try:
        with open(text, encoding="utf-8") as fh:
            return tuple(sorted({w.strip() for w in fh if w.strip()}))
    except OSError as exc:
        raise click.BadParameter(f"{text}: use 'english' or a file with one word a line "
                                 f"({exc.strerror})") from None


@main.group()
def tfidf():
    """Incremental TF-IDF over a text column of Parquet partitions.

    \b
    Example:
      bigprep tfidf fit 'docs/*.parquet' --text-column body --state tfidf.json
      bigprep tfidf update 'docs-new/*.parquet' --state tfidf.json
      bigprep tfidf transform 'docs/*.parquet' --state tfidf.json --out vectors/ --keywords 10
    """


@tfidf.command("fit")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--text-column", required=True, metavar="COL", help="The column holding the text.")
@click.option("--state", "state_path", required=True, metavar="FILE",
              help="Where to save the counts (JSON, plus FILE.npz).")
@click.option("--min-df", default="1", show_default=True, metavar="N|P",
              help="Keep terms in at least N documents (or a proportion P).")
@click.option("--max-df", default="1.0", show_default=True, metavar="N|P",
              help="Keep terms in at most N documents (or a proportion P).")
@click.option("--max-features", type=click.IntRange(min=1), default=None,
              help="Keep only the most frequent terms.")
@click.option("--ngram", default="1,1", show_default=True, metavar="MIN,MAX")
@click.option("--analyzer", type=click.Choice(["word", "char", "char_wb"]), default="word",
              show_default=True)
@click.option("--stop-words", metavar="english|FILE", help="Drop these words first.")
@click.option("--tokenizer", type=click.Choice(["jieba"]), default=None,
              help="jieba for Chinese (pip install 'bigprep[zh]').")
@click.option("--token-pattern", default=r"(?u)\b\w\w+\b", show_default=True)
@click.option("--no-lowercase", is_flag=True, help="Keep the case of the text.")
@click.option("--strip-accents", type=click.Choice(["ascii", "unicode"]), default=None)
@click.option("--norm", type=click.Choice(["l2", "l1", "none"]), default="l2", show_default=True)
@click.option("--no-idf", is_flag=True, help="Term frequencies only (use_idf=False).")
@click.option("--no-smooth-idf", is_flag=True, help="idf = ln(n/df) + 1 (smooth_idf=False).")
@click.option("--sublinear-tf", is_flag=True, help="tf = 1 + ln(tf).")
@click.option("--hash-features", type=click.IntRange(min=2), default=None, metavar="N",
              help="No vocabulary: hash terms into N columns (as HashingVectorizer).")
@execution_options
def tfidf_fit(inputs, text_column, state_path, min_df, max_df, max_features, ngram, analyzer,
              stop_words, tokenizer, token_pattern, no_lowercase, strip_accents, norm, no_idf,
              no_smooth_idf, sublinear_tf, hash_features, chunk_rows, executor, quiet, storage):
    """Count document frequencies over the partitions and save them.

    The state keeps raw counts per term and the number of documents, never the
    idf, so `update` can add new partitions later.

    \b
    Example:
      bigprep tfidf fit 'docs/*.parquet' --text-column body --state tfidf.json \\
          --min-df 5 --max-df 0.5 --max-features 200000 --ngram 1,2 --sublinear-tf
      bigprep tfidf fit 'zh/*.parquet' --text-column text --tokenizer jieba --state zh.json
    """
    from .text import tfidf as tf
    from .text.analyze import TextOptions

    text = TextOptions(analyzer=analyzer, ngram_range=_ngram(ngram), lowercase=not no_lowercase,
                       token_pattern=token_pattern, stop_words=_stop_words(stop_words),
                       tokenizer=tokenizer, strip_accents=strip_accents)
    params = tf.TfidfParams(text=text, min_df=_number(min_df), max_df=_number(max_df),
                            max_features=max_features, norm=None if norm == "none" else norm,
                            use_idf=not no_idf, smooth_idf=not no_smooth_idf,
                            sublinear_tf=sublinear_tf, hash_features=hash_features)
    state = tf.fit(inputs, text_column=text_column, params=params, chunk_rows=chunk_rows,
                   executor=executor, storage_options=storage)
    state.save(state_path, storage)
    if not quiet:
        _tfidf_summary(state, state_path)


def _tfidf_summary(state, state_path) -> None:
    seen = 0 if state.docs.counts is None else state.docs.counts.height
    _console().print(f"{state.docs.n_docs:,} documents, {seen:,} distinct terms, "
                     f"{state.n_features:,} columns; state saved: {state_path}")


@tfidf.command("update")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--state", "state_path", required=True, metavar="FILE")
@click.option("--refit", is_flag=True,
              help="Renumber the vocabulary alphabetically from all counts (vectors written "
                   "before no longer match).")
@execution_options
def tfidf_update(inputs, state_path, refit, chunk_rows, executor, quiet, storage):
    """Add new partitions' counts to a saved state; old partitions are not read.

    Term ids stay stable: new terms are appended, so vectors written before stay
    valid (--refit renumbers).

    \b
    Example:
      bigprep tfidf update 'docs-new/*.parquet' --state tfidf.json
    """
    from .text import tfidf as tf

    state = tf.update(tf.TfidfState.load(state_path, storage), inputs, refit=refit,
                      chunk_rows=chunk_rows, executor=executor, storage_options=storage)
    state.save(state_path, storage)
    if not quiet:
        _tfidf_summary(state, state_path)


def _keep(text: str | None) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


@tfidf.command("transform")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--state", "state_path", required=True, metavar="FILE")
@click.option("--out", "-o", required=True, metavar="DIR")
@click.option("--keep", metavar="COLS", help="Columns to copy to the output, e.g. id,title.")
@click.option("--keywords", type=click.IntRange(min=0), default=0, metavar="K",
              help="Also write the top K terms of each document.")
@execution_options
def tfidf_transform(inputs, state_path, out, keep, keywords, chunk_rows, executor, quiet,
                    storage):
    """Write TF-IDF vectors: one Parquet file per input, with the kept columns,
    `tfidf_indices` and `tfidf_weights` (a sparse row), and `keywords`.

    \b
    Example:
      bigprep tfidf transform 'docs/*.parquet' --state tfidf.json --out vectors/ \\
          --keep id,title --keywords 10
    """
    from .text import tfidf as tf

    files = tf.transform(tf.TfidfState.load(state_path, storage), inputs, out,
                         keep=_keep(keep), keywords=keywords, chunk_rows=chunk_rows,
                         executor=executor, storage_options=storage)
    if not quiet:
        _console().print(f"{sum(f['rows'] for f in files):,} documents in {len(files)} files "
                         f"written to {out}")


@tfidf.command("keywords")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--state", "state_path", required=True, metavar="FILE")
@click.option("--out", "-o", required=True, metavar="DIR")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--keep", metavar="COLS", help="Columns to copy to the output, e.g. id.")
@execution_options
def tfidf_keywords(inputs, state_path, out, top, keep, chunk_rows, executor, quiet, storage):
    """Write the top terms of every document by TF-IDF weight (ties by term).

    \b
    Example:
      bigprep tfidf keywords 'docs/*.parquet' --state tfidf.json --top 10 --out keywords/
    """
    from .text import tfidf as tf

    files = tf.transform(tf.TfidfState.load(state_path, storage), inputs, out,
                         keep=_keep(keep), keywords=top, vectors=False, chunk_rows=chunk_rows,
                         executor=executor, storage_options=storage)
    if not quiet:
        _console().print(f"keywords of {sum(f['rows'] for f in files):,} documents written "
                         f"to {out}")


# --- models ---------------------------------------------------------------------------

@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=True, metavar="DIR", help="The model folder to write.")
@click.option("--target", metavar="COL", help="The column to predict (not for kmeans).")
@click.option("--model", "model_name", default="logistic", show_default=True,
              type=click.Choice(["logistic", "svm", "modified-huber", "perceptron",
                                 "passive-aggressive", "multinomial-nb", "bernoulli-nb",
                                 "rbf-svm", "rbf-logistic", "linear", "kmeans"]))
@click.option("--task", type=click.Choice(["classification", "regression", "cluster"]),
              help="Checked against --model (linear is regression, kmeans cluster).")
@click.option("--features", metavar="GLOBS", help="Feature columns, e.g. 'num_*,age'. "
              "Default: every column but the target.")
@click.option("--categorical", metavar="COLS", help="Columns to one-hot encode.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--validation", type=click.FloatRange(0, 0.5), default=0.05, show_default=True,
              help="Share of rows held out (by a hash of the row position) for early stopping.")
@click.option("--penalty", type=click.Choice(["l2", "l1", "elasticnet", "none"]), default="l2",
              show_default=True)
@click.option("--alpha", type=float, default=1e-4, show_default=True)
@click.option("--l1-ratio", type=float, default=0.15, show_default=True)
@click.option("--class-weight", type=click.Choice(["balanced"]), default=None)
@click.option("--kernel-components", type=click.IntRange(min=1), default=500,
              show_default=True, help="Random Fourier features of rbf-* models.")
@click.option("--gamma", type=float, default=None, help="RBF gamma (default 1/n_features).")
@click.option("--clusters", type=click.IntRange(min=2), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--init-model", metavar="DIR", help="Continue training this saved model.")
@execution_options
def train(inputs, out, target, model_name, task, features, categorical, epochs, validation,
          penalty, alpha, l1_ratio, class_weight, kernel_components, gamma, clusters, seed,
          init_model, chunk_rows, executor, quiet, storage):
    """Train a partial_fit model over partitions, out of core.

    A first pass learns the classes, feature scaling and categorical levels;
    then each epoch visits the chunks in a seeded shuffled order. A checkpoint
    is saved after every epoch; --init-model continues a model on new data.

    \b
    Example:
      bigprep train 'train/*.parquet' --target delayed --model logistic --out model/ \\
          --features 'num_*' --categorical carrier,origin --epochs 5 --validation 0.05
      bigprep train 'train/*.parquet' --target delayed --model svm --penalty elasticnet \\
          --out model/
      bigprep train 'train/*.parquet' --task regression --target arr_delay --model linear \\
          --out model/
    """
    from .models.train import TrainOptions, check_task
    from .models.train import train as run_train

    check_task(model_name, task)
    options = TrainOptions(model=model_name, epochs=epochs, validation=validation, seed=seed,
                           penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                           class_weight=class_weight, kernel_components=kernel_components,
                           gamma=gamma, clusters=clusters)
    log = None if quiet else _console().print
    result = run_train(inputs, out, target=target, options=options,
                       features=_keep(features), categorical=_keep(categorical),
                       init_model=init_model, chunk_rows=chunk_rows, executor=executor, log=log,
                       storage_options=storage)
    if not quiet:
        _console().print(f"model saved: {out} ({len(result['history'])} epochs)")


@main.command()
@click.argument("model_dir")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=True, metavar="DIR")
@click.option("--keep", metavar="COLS", help="Columns to copy to the output, e.g. id.")
@click.option("--proba", is_flag=True, help="Add proba_CLASS columns.")
@execution_options
def predict(model_dir, inputs, out, keep, proba, chunk_rows, executor, quiet, storage):
    """Write predictions: one Parquet file per input, kept columns + `prediction`.

    \b
    Example:
      bigprep predict model/ 'new/*.parquet' --out predictions/ --keep id --proba
    """
    from .models.train import predict as run_predict

    files = run_predict(model_dir, inputs, out, keep=_keep(keep), proba=proba,
                        chunk_rows=chunk_rows, executor=executor, storage_options=storage)
    if not quiet:
        _console().print(f"{sum(f['rows'] for f in files):,} predictions written to {out}")


@main.command()
@click.argument("model_dir")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@execution_options
def evaluate(model_dir, inputs, as_json, chunk_rows, executor, quiet, storage):
    """Metrics of a saved model on labelled partitions, out of core.

    Classification: accuracy, precision, recall, F1, log loss, ROC AUC (binary;
    from a 2**20-bucket score histogram) and the confusion matrix. Regression:
    RMSE, MAE, R².

    \b
    Example:
      bigprep evaluate model/ 'test/*.parquet'
      bigprep evaluate model/ 'test/*.parquet' --json > metrics.json
    """
    from .models.train import evaluate as run_evaluate

    result = run_evaluate(model_dir, inputs, chunk_rows=chunk_rows, executor=executor,
                          storage_options=storage)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{model_dir} on {result['rows']:,} rows", title_justify="left")
    table.add_column("metric")
    table.add_column("value")
    for name, value in result.items():
        if name not in ("rows", "confusion_matrix"):
            table.add_row(name, "-" if value is None else f"{value:.6g}")
    console = Console()
    console.print(table)
    if "confusion_matrix" in result:
        cm = result["confusion_matrix"]
        console.print("confusion matrix (rows: true, columns: predicted) "
                      f"{cm['classes']}: {cm['rows_true_columns_predicted']}")

if __name__ == "__main__":
    main()
