"""``bigprep tfidf fit | update | transform | keywords``."""

from __future__ import annotations

import click

from ..io.lock import locked
from .common import console, execution_options, names, output_options


def _number(text: str, flag: str):
    """``5`` is a count of documents, ``0.5`` a proportion (as scikit-learn)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise click.BadParameter(f"{text!r}: give a count (5) or a proportion (0.5)",
                                     param_hint=flag) from None


def _ngram(text: str) -> tuple[int, int]:
    try:
        low, _, high = text.partition(",")
        pair = (int(low), int(high or low))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use MIN,MAX such as 1,2",
                                 param_hint="--ngram") from None
    if not 1 <= pair[0] <= pair[1]:
        raise click.BadParameter(f"{text!r}: need 1 <= MIN <= MAX", param_hint="--ngram")
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


@click.group()
def tfidf():
    """Incremental TF-IDF over a text column of Parquet partitions: learn (fit),
    learn more (update), apply (transform, keywords).

    \b
    Example:
      bigprep tfidf fit 'docs/*.parquet' --text-column body --state tfidf.json
      bigprep tfidf update 'docs-new/*.parquet' --state tfidf.json
      bigprep tfidf transform 'docs/*.parquet' --state tfidf.json --out vectors/ --keywords 10
    """


def _summary(tf, state_path) -> None:
    counts = tf.state_.counts.counts
    seen = 0 if counts is None else counts.height
    console().print(f"{tf.documents_:,} documents, {seen:,} distinct terms, "
                    f"{tf.state_.n_features:,} columns; state saved: {state_path}")


@tfidf.command("fit")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--text-column", required=True, metavar="COL", help="The column holding the text.")
@click.option("--state", "state_path", required=True, metavar="FILE",
              help="Where to save the counts (JSON, plus FILE.<hash>.npz).")
@click.option("--min-df", default="1", show_default=True, metavar="N|P",
              help="Keep terms in at least N documents (or a proportion P).")
@click.option("--max-df", default="1.0", show_default=True, metavar="N|P",
              help="Keep terms in at most N documents (or a proportion P).")
@click.option("--max-features", type=click.IntRange(min=1), default=None,
              help="Keep only the most frequent terms.")
@click.option("--ngram", default="1,1", show_default=True, metavar="MIN,MAX",
              help="Word (or character) n-grams from MIN to MAX long.")
@click.option("--analyzer", type=click.Choice(["word", "char", "char_wb"]), default="word",
              show_default=True, help="Terms are words, or character n-grams.")
@click.option("--stop-words", metavar="english|FILE", help="Drop these words first.")
@click.option("--tokenizer", type=click.Choice(["jieba"]), default=None,
              help="jieba for Chinese (pip install 'bigprep[zh]').")
@click.option("--token-pattern", default=r"(?u)\b\w\w+\b", show_default=True,
              help="What a word is (a regular expression).")
@click.option("--no-lowercase", is_flag=True, help="Keep the case of the text.")
@click.option("--strip-accents", type=click.Choice(["ascii", "unicode"]), default=None,
              help="Remove accents first.")
@click.option("--norm", type=click.Choice(["l2", "l1", "none"]), default="l2", show_default=True,
              help="Normalise each document's vector.")
@click.option("--no-idf", is_flag=True, help="Term frequencies only (use_idf=False).")
@click.option("--no-smooth-idf", is_flag=True, help="idf = ln(n/df) + 1 (smooth_idf=False).")
@click.option("--sublinear-tf", is_flag=True, help="tf = 1 + ln(tf).")
@click.option("--hash-features", type=click.IntRange(min=2), default=None, metavar="N",
              help="No vocabulary: hash terms into N columns (as HashingVectorizer).")
@click.option("--out", "-o", metavar="DIR", default=None,
              help="Also write the vectors of the same partitions here, as `tfidf transform` "
                   "would (fit_transform: one command, one start-up).")
@click.option("--keep", metavar="COLS", help="With --out: columns to copy to the output.")
@click.option("--keywords", type=click.IntRange(min=0), default=0, metavar="K",
              help="With --out: also write the top K terms of each document.")
@output_options
@execution_options
def tfidf_fit(inputs, text_column, state_path, min_df, max_df, max_features, ngram, analyzer,
              stop_words, tokenizer, token_pattern, no_lowercase, strip_accents, norm, no_idf,
              no_smooth_idf, sublinear_tf, hash_features, out, keep, keywords, overwrite,
              compression, chunk_rows, executor, quiet, storage):
    """Learn: count document frequencies over the partitions and save them (and,
    with --out, write their vectors too).

    The state keeps raw counts per term and the number of documents, never the
    idf, so `update` can add new partitions later.

    \b
    Example:
      bigprep tfidf fit 'docs/*.parquet' --text-column body --state tfidf.json \\
          --min-df 5 --max-df 0.5 --max-features 200000 --ngram 1,2 --sublinear-tf
      bigprep tfidf fit 'zh/*.parquet' --text-column text --tokenizer jieba --state zh.json
      bigprep tfidf fit 'docs/*.parquet' --text-column body --state tfidf.json \\
          --out vectors/ --keep id --keywords 5
    """
    if not out and (keep or keywords or overwrite or compression != "zstd"):
        raise click.UsageError("--keep, --keywords, --overwrite and --compression shape the "
                               "vectors written to --out: give --out DIR too (or use tfidf "
                               "transform later).")
    from ..api.text import TfidfVectorizer

    tf = TfidfVectorizer(analyzer=analyzer, ngram_range=_ngram(ngram),
                         lowercase=not no_lowercase, token_pattern=token_pattern,
                         stop_words=_stop_words(stop_words), tokenizer=tokenizer,
                         strip_accents=strip_accents, min_df=_number(min_df, "--min-df"),
                         max_df=_number(max_df, "--max-df"), max_features=max_features,
                         norm=None if norm == "none" else norm, use_idf=not no_idf,
                         smooth_idf=not no_smooth_idf, sublinear_tf=sublinear_tf,
                         hash_features=hash_features, chunk_rows=chunk_rows, executor=executor,
                         storage_options=storage)
    if not out:
        tf.fit(inputs, text_column=text_column, save=state_path)
    else:
        tf.set_params(compression=compression)
        files = tf.fit_transform(inputs, text_column=text_column, out=out, keep=names(keep),
                                 keywords=keywords, overwrite=overwrite, save=state_path)
    if not quiet:
        _summary(tf, state_path)
        if out:
            _written(files, out)


@tfidf.command("update")
@click.argument("inputs", nargs=-1, required=False)
@click.option("--state", "state_path", required=True, metavar="FILE",
              help="The saved state to add the new partitions to.")
@click.option("--refit", is_flag=True,
              help="Renumber the vocabulary alphabetically from all counts (vectors written "
                   "before no longer match).")
@execution_options
def tfidf_update(inputs, state_path, refit, chunk_rows, executor, quiet, storage):
    """Learn more: add new partitions' counts to a saved state; old partitions are
    not read.

    Term ids stay stable: new terms are appended, so vectors written before stay
    valid (--refit renumbers).

    \b
    Example:
      bigprep tfidf update 'docs-new/*.parquet' --state tfidf.json
      bigprep tfidf update --state tfidf.json --refit     # renumber, no new data
    """
    from ..api.text import TfidfVectorizer

    if not inputs and not refit:
        raise click.UsageError("give the new partitions to add (only --refit runs without "
                               "INPUTS).")

    with locked(state_path):  # read, merge, save: one holder
        tf = TfidfVectorizer.load(state_path, executor=executor, storage_options=storage)
        tf.set_params(chunk_rows=chunk_rows)
        tf.partial_fit(inputs, refit=refit, save=state_path)
    if not quiet:
        _summary(tf, state_path)


def _write(inputs, state_path, out, keep, keywords, vectors, overwrite, compression,
           chunk_rows, executor, storage):
    from ..api.text import TfidfVectorizer

    tf = TfidfVectorizer.load(state_path, executor=executor, storage_options=storage)
    tf.set_params(chunk_rows=chunk_rows, compression=compression)
    return tf.transform(inputs, out=out, keep=names(keep), keywords=keywords, vectors=vectors,
                        overwrite=overwrite)


@tfidf.command("transform")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--state", "state_path", required=True, metavar="FILE",
              help="The saved state to apply.")
@click.option("--out", "-o", required=True, metavar="DIR", help="Output folder.")
@click.option("--keep", metavar="COLS", help="Columns to copy to the output, e.g. id,title.")
@click.option("--keywords", type=click.IntRange(min=0), default=0, metavar="K",
              help="Also write the top K terms of each document.")
@output_options
@execution_options
def tfidf_transform(inputs, state_path, out, keep, keywords, overwrite, compression,
                    chunk_rows, executor, quiet, storage):
    """Apply: write TF-IDF vectors, one Parquet file per input, with the kept
    columns, `tfidf_indices` and `tfidf_weights` (a sparse row), and `keywords`.

    \b
    Example:
      bigprep tfidf transform 'docs/*.parquet' --state tfidf.json --out vectors/ \\
          --keep id,title --keywords 10
    """
    files = _write(inputs, state_path, out, keep, keywords, True, overwrite, compression,
                   chunk_rows, executor, storage)
    if not quiet:
        _written(files, out)


def _written(files, out) -> None:
    console().print(f"{sum(f['rows'] for f in files):,} documents in {len(files)} files "
                    f"written to {out}")


@tfidf.command("keywords")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--state", "state_path", required=True, metavar="FILE",
              help="The saved state to apply.")
@click.option("--out", "-o", required=True, metavar="DIR", help="Output folder.")
@click.option("--keywords", type=click.IntRange(min=1), default=10, show_default=True,
              metavar="K", help="How many terms per document (as in tfidf transform).")
@click.option("--top", type=click.IntRange(min=1), default=None, hidden=True,
              help="Old name of --keywords.")
@click.option("--keep", metavar="COLS", help="Columns to copy to the output, e.g. id.")
@output_options
@execution_options
def tfidf_keywords(inputs, state_path, out, keywords, top, keep, overwrite, compression,
                   chunk_rows, executor, quiet, storage):
    """Apply: write the top terms of every document by TF-IDF weight (ties by term).

    \b
    Example:
      bigprep tfidf keywords 'docs/*.parquet' --state tfidf.json --keywords 10 --out kw/
    """
    files = _write(inputs, state_path, out, keep, top or keywords, False, overwrite,
                   compression, chunk_rows, executor, storage)
    if not quiet:
        console().print(f"keywords of {sum(f['rows'] for f in files):,} documents written "
                        f"to {out}")
