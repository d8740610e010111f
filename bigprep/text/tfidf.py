"""Incremental TF-IDF over Parquet partitions.

The fitted state is the raw counts — per term the number of documents holding it
(df) and its total count (tf, for ``max_features``) — and the number of
documents; never the idf. Fitting is a reduction of those counts over chunks,
``update`` merges the counts of new partitions without re-reading old ones, and
the idf is recomputed from the counts whenever vectors are made. Term ids are
stable: a fresh fit numbers the kept terms alphabetically (as scikit-learn's
``vocabulary_``); an update keeps every id it gave and appends new terms.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from .. import __version__
from ..dataset import DEFAULT_CHUNK_ROWS, Dataset, Partition, iter_chunks, open_dataset
from ..errors import BigprepError
from ..executor import Executor
from ..impute.values import frame_from_bytes, frame_to_bytes
from ..sink import check_out_dir, write_each, write_partition
from ..statefile import load_state, save_state
from .analyze import DOC, TERM, TextOptions, terms

STATE_FORMAT = "bigprep.tfidf/1"
ID, DF, TF, IDF, W = "id", "df", "tf", "idf", "weight"
INDICES, WEIGHTS, KEYWORDS = "tfidf_indices", "tfidf_weights", "keywords"


@dataclass(frozen=True)
class TfidfParams:
    """Everything that decides the vectors, as TfidfVectorizer's keywords."""

    text: TextOptions = field(default_factory=TextOptions)
    min_df: float | int = 1
    max_df: float | int = 1.0
    max_features: int | None = None
    norm: str | None = "l2"
    use_idf: bool = True
    smooth_idf: bool = True
    sublinear_tf: bool = False
    hash_features: int | None = None  # hashing mode: no vocabulary

    def to_dict(self) -> dict:
        data = asdict(self)
        data["text"] = self.text.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TfidfParams:
        return cls(**{**data, "text": TextOptions.from_dict(data["text"])})

    def check(self) -> None:
        try:
            re.compile(self.text.token_pattern)
        except re.error as exc:
            raise BigprepError(f"--token-pattern {self.text.token_pattern!r}: not a regular "
                               f"expression ({exc}).") from None
        if self.norm not in ("l1", "l2", None):
            raise BigprepError(f"--norm {self.norm}: use l2, l1 or none.")
        if self.hash_features is not None and (self.min_df != 1 or self.max_df != 1.0
                                               or self.max_features):
            raise BigprepError("--hash-features keeps no vocabulary, so --min-df, --max-df and "
                               "--max-features do not apply; leave them out.")
        for name, value in (("--min-df", self.min_df), ("--max-df", self.max_df)):
            if value < 0 or (isinstance(value, float) and value > 1):
                raise BigprepError(f"{name} {value}: a proportion in [0.0, 1.0] or a count of "
                                   "documents (an integer).")


@dataclass
class DocFreqState:
    """Raw counts: documents seen, and per term (or hashed index) df and tf.

    >>> s = DocFreqState(); s.update(pl.DataFrame({"__bp_doc": [0, 0, 1], "__bp_term": ["a", "a", "b"]}), 3)
    >>> s.n_docs, sorted(s.counts.rows())
    (3, [('a', 1, 2), ('b', 1, 1)])
    """

    n_docs: int = 0
    counts: pl.DataFrame | None = None  # TERM, DF, TF

    def update(self, occurrences: pl.DataFrame, n_docs: int) -> None:
        self.n_docs += n_docs
        if occurrences.height:
            chunk = occurrences.group_by(TERM).agg(pl.col(DOC).n_unique().cast(pl.Int64).alias(DF),
                                                   pl.len().cast(pl.Int64).alias(TF))
            self.counts = _sum_counts(self.counts, chunk)

    def merge(self, other: DocFreqState) -> DocFreqState:
        return DocFreqState(self.n_docs + other.n_docs, _sum_counts(self.counts, other.counts))


def _sum_counts(a: pl.DataFrame | None, b: pl.DataFrame | None) -> pl.DataFrame | None:
    if a is None or b is None:
        return a if b is None else b
    return pl.concat([a, b]).group_by(TERM).agg(pl.col(DF).sum(), pl.col(TF).sum())


def hashed(occurrences: pl.DataFrame, n_features: int) -> pl.DataFrame:
    """Replace terms by HashingVectorizer's column (murmurhash3, alternate_sign=False)."""
    from sklearn.utils import murmurhash3_32

    unique = occurrences[TERM].unique().to_list()
    columns = []
    for term in unique:
        h = murmurhash3_32(term, seed=0)
        columns.append((2147483647 - (n_features - 1)) % n_features if h == -2147483648
                       else abs(h) % n_features)
    return occurrences.with_columns(
        pl.col(TERM).replace_strict(unique, columns, return_dtype=pl.Int64).alias(ID))


@dataclass
class TfidfState:
    """Parameters, counts and the stable vocabulary (term -> id)."""

    params: TfidfParams
    text_column: str
    docs: DocFreqState = field(default_factory=DocFreqState)
    vocabulary: pl.DataFrame | None = None  # TERM, ID: every id ever given
    partitions: int = 0
    updates: int = 0
    seen: list = field(default_factory=list)  # [path, rows] of every partition counted

    # -- which terms, which ids, which idf -------------------------------------------
    def kept(self) -> pl.DataFrame:
        """The terms that pass min_df / max_df / max_features now, with their df."""
        p, n = self.params, self.docs.n_docs
        counts = self.docs.counts if self.docs.counts is not None else pl.DataFrame(
            schema={TERM: pl.String, DF: pl.Int64, TF: pl.Int64})
        if p.hash_features:
            return counts
        high = p.max_df if isinstance(p.max_df, int) else p.max_df * n
        low = p.min_df if isinstance(p.min_df, int) else p.min_df * n
        if high < low:
            raise BigprepError(f"--max-df {p.max_df} keeps fewer documents ({high:g}) than "
                               f"--min-df {p.min_df} ({low:g}): raise --max-df or lower --min-df.")
        kept = counts.filter((pl.col(DF) >= low) & (pl.col(DF) <= high)).sort(TERM)
        if p.max_features is not None:
            # numpy's own argsort over the alphabetical order, as scikit-learn does it, so
            # ties between equally frequent terms fall the same way
            order = (-kept[TF].to_numpy()).argsort()[:p.max_features]
            kept = kept[np.sort(order)]
        if kept.height == 0 and counts.height:
            raise BigprepError(
                f"after pruning, no terms remain: of {counts.height:,} terms in {n:,} documents, "
                f"none is in at least {low:g} (--min-df {p.min_df}) and at most {high:g} "
                f"(--max-df {p.max_df}) documents. Lower --min-df or raise --max-df.")
        return kept

    def assign_ids(self, refit: bool = False) -> None:
        """Give every kept term an id: old ids stay, new terms are appended."""
        if self.params.hash_features:
            return
        kept = self.kept().select(TERM)
        if self.vocabulary is None or refit:
            self.vocabulary = kept.with_row_index(ID).select(TERM, pl.col(ID).cast(pl.Int64))
            return
        new = kept.join(self.vocabulary, on=TERM, how="anti").sort(TERM)
        start = int(self.vocabulary[ID].max()) + 1 if self.vocabulary.height else 0
        new = new.with_columns((pl.int_range(pl.len(), dtype=pl.Int64) + start).alias(ID))
        self.vocabulary = pl.concat([self.vocabulary, new.select(TERM, ID)])

    @property
    def n_features(self) -> int:
        if self.params.hash_features:
            return self.params.hash_features
        if self.vocabulary is None or self.vocabulary.height == 0:
            return 0
        return int(self.vocabulary[ID].max()) + 1

    def weights_table(self) -> pl.DataFrame:
        """Per emitted term: TERM (absent when hashing), ID and IDF."""
        p, n = self.params, self.docs.n_docs
        kept = self.kept()
        if p.hash_features:  # the counts are keyed by hashed column already
            table = kept.rename({TERM: ID})
        else:
            table = kept.join(self.vocabulary, on=TERM, how="inner")
        if p.use_idf:
            num, den = (n + 1, pl.col(DF) + 1) if p.smooth_idf else (n, pl.col(DF))
            idf = (pl.lit(float(num)) / den.cast(pl.Float64)).log() + 1.0
        else:
            idf = pl.lit(1.0)
        return table.with_columns(idf.alias(IDF))

    # -- saving ------------------------------------------------------------------------
    def save(self, path: str, options: dict | None = None) -> None:
        sidecar = {}
        if self.docs.counts is not None:
            sidecar["counts"] = frame_to_bytes(self.docs.counts)
        if self.vocabulary is not None:
            sidecar["vocabulary"] = frame_to_bytes(self.vocabulary)
        top = []
        if self.docs.counts is not None:
            top = self.docs.counts.sort([DF, TERM], descending=[True, False]).head(20).rows()
        save_state(path, {
            "format": STATE_FORMAT, "bigprep_version": __version__,
            "saved": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "text_column": self.text_column, "params": self.params.to_dict(),
            "documents": self.docs.n_docs, "partitions": self.partitions, "updates": self.updates,
            "terms_seen": 0 if self.docs.counts is None else self.docs.counts.height,
            "vocabulary_size": self.n_features, "most_common": top,
            "partitions_seen": self.seen}, sidecar, options)

    @classmethod
    def load(cls, path: str, options: dict | None = None) -> TfidfState:
        data, sidecar = load_state(path, STATE_FORMAT, "TF-IDF",
                                   "Fit it again with `bigprep tfidf fit`.", options)
        try:
            return cls._from_saved(data, sidecar)
        except (KeyError, TypeError, ValueError) as exc:
            raise BigprepError(f"--state {path}: the saved state is incomplete or was edited "
                               f"({type(exc).__name__}: {exc}). Fit it again.") from None

    @classmethod
    def _from_saved(cls, data: dict, sidecar: dict) -> TfidfState:
        counts = frame_from_bytes(sidecar["counts"]) if "counts" in sidecar else None
        vocabulary = frame_from_bytes(sidecar["vocabulary"]) if "vocabulary" in sidecar else None
        return cls(TfidfParams.from_dict(data["params"]), data["text_column"],
                   DocFreqState(data["documents"], counts), vocabulary, data["partitions"],
                   data["updates"], data.get("partitions_seen", []))


# --- the passes ----------------------------------------------------------------------

def _check_text(dataset: Dataset, column: str) -> None:
    dataset.require(column, "--text-column")
    dtype = pl.Schema(dataset.schema)[column]
    if dtype != pl.String:
        raise BigprepError(f"--text-column {column}: the column is {dtype}, not text "
                           f"(first file {dataset.partitions[0].path}). Name a string column.")


def _occurrences(frame: pl.DataFrame, state_params: TfidfParams, column: str) -> pl.DataFrame:
    occ = terms(frame[column], state_params.text)
    if state_params.hash_features:
        occ = hashed(occ, state_params.hash_features)
    return occ


def count_partition(job: tuple[Partition, TfidfParams, str, int]) -> DocFreqState:
    partition, params, column, chunk_rows = job
    state = DocFreqState()
    for _, frame in iter_chunks(partition, [column], chunk_rows):
        occ = _occurrences(frame, params, column)
        if params.hash_features:
            occ = occ.drop(TERM).rename({ID: TERM})
        state.update(occ, frame.height)
    return state


def _count(dataset: Dataset, params: TfidfParams, column: str, chunk_rows: int,
           executor: Executor) -> DocFreqState:
    jobs = [(p, params, column, chunk_rows) for p in dataset.partitions]
    return executor.tree_reduce(count_partition, jobs, DocFreqState.merge, label="count terms")


def fit(inputs, *, text_column: str, params: TfidfParams = TfidfParams(),
        chunk_rows: int = DEFAULT_CHUNK_ROWS, executor: Executor | None = None,
        storage_options: dict | None = None) -> TfidfState:
    """Count document frequencies over the partitions; number the kept terms."""
    params.check()
    if params.text.tokenizer == "jieba":
        params.text.sklearn_params()  # fail early if jieba is missing
    dataset = open_dataset(inputs, storage_options)
    _check_text(dataset, text_column)
    docs = _count(dataset, params, text_column, chunk_rows, executor or Executor())
    state = TfidfState(params, text_column, docs, partitions=len(dataset.partitions),
                       seen=[[p.path, p.rows] for p in dataset.partitions])
    state.assign_ids()
    return state


def update(state: TfidfState, inputs, *, refit: bool = False,
           chunk_rows: int = DEFAULT_CHUNK_ROWS, executor: Executor | None = None,
           storage_options: dict | None = None) -> TfidfState:
    """Merge the counts of new partitions; old partitions are not read again."""
    dataset = open_dataset(inputs, storage_options)
    _check_text(dataset, state.text_column)
    seen = [[p.path, p.rows] for p in dataset.partitions]
    repeated = [path for path, rows in seen if [path, rows] in state.seen]
    if repeated:
        raise BigprepError(f"update: {repeated[0]} ({len(repeated)} file(s) in all) was "
                           "already counted in this state; counting it again would count its "
                           "documents twice. Give only new partitions.")
    new = _count(dataset, state.params, state.text_column, chunk_rows, executor or Executor())
    merged = TfidfState(state.params, state.text_column, state.docs.merge(new),
                        state.vocabulary, state.partitions + len(dataset.partitions),
                        state.updates + 1, state.seen + seen)
    merged.assign_ids(refit=refit)
    return merged


@dataclass
class Lookup:
    """What vectors need, built once per task: term ids, idf and names by id."""

    ids: pl.DataFrame | None  # TERM -> ID of the emitted terms (None when hashing)
    idf: np.ndarray  # by id; 0 where an id is not emitted
    names: pl.Series | None  # term by id, for keywords (None when hashing)

    @classmethod
    def of(cls, state: TfidfState, table: pl.DataFrame) -> Lookup:
        idf = np.zeros(max(state.n_features, 1))
        idf[table[ID].to_numpy()] = table[IDF].to_numpy()
        if state.params.hash_features:
            return cls(None, idf, None)
        names = np.full(len(idf), "", dtype=object)
        names[table[ID].to_numpy()] = table[TERM].to_numpy()
        return cls(table.select(TERM, ID), idf, pl.Series(TERM, names, dtype=pl.String))


_SHIFT = 1 << 32  # (document, term id) packed in one int64 key: sorted by document, then id


def vectorize(frame: pl.DataFrame, state: TfidfState, lookup: Lookup, column: str,
              keywords: int = 0) -> pl.DataFrame:
    """TF-IDF vectors of one chunk: sorted term ids and weights (and top terms)."""
    p = state.params
    occ = _occurrences(frame, p, column)
    if lookup.ids is not None:
        occ = occ.join(lookup.ids, on=TERM)  # only emitted terms, with their ids
    # term counts per (document, id): sorting one int64 key and run lengths beat a group-by
    runs = occ.select((pl.col(DOC) * _SHIFT + pl.col(ID)).sort().rle().alias("r")).unnest("r")
    counted = runs.select((pl.col("value") // _SHIFT).alias(DOC),
                          (pl.col("value") % _SHIFT).alias(ID), pl.col("len").alias(TF))
    tf = pl.col(TF).cast(pl.Float64)
    if p.sublinear_tf:
        tf = tf.log() + 1.0
    idf = pl.Series(IDF, lookup.idf[counted[ID].to_numpy()])
    weighted = counted.with_columns((tf * idf).alias(W))
    if p.norm == "l2":
        weighted = weighted.with_columns(pl.col(W) / (pl.col(W) ** 2).sum().sqrt().over(DOC))
    elif p.norm == "l1":
        weighted = weighted.with_columns(pl.col(W) / pl.col(W).abs().sum().over(DOC))
    vectors = weighted.group_by(DOC, maintain_order=True).agg(
        pl.col(ID).alias(INDICES), pl.col(W).alias(WEIGHTS))
    if keywords:
        if lookup.names is None:  # hashing: the chunk's own terms name the columns
            ranked = (occ.unique([DOC, TERM]).select(DOC, TERM, ID)
                      .join(weighted.select(DOC, ID, W), on=[DOC, ID]))
        else:
            ranked = weighted.with_columns(lookup.names.gather(weighted[ID]).alias(TERM))
        top = (ranked.sort([DOC, W, TERM], descending=[False, True, False])
               .group_by(DOC, maintain_order=True).head(keywords)
               .group_by(DOC, maintain_order=True).agg(pl.col(TERM).alias(KEYWORDS)))
        vectors = vectors.join(top, on=DOC, how="left")
    docs = pl.DataFrame({DOC: pl.int_range(frame.height, dtype=pl.Int64, eager=True)})
    out = docs.join(vectors, on=DOC, how="left", maintain_order="left").drop(DOC)
    empty = {INDICES: pl.List(pl.Int64), WEIGHTS: pl.List(pl.Float64), KEYWORDS: pl.List(pl.String)}
    return out.with_columns(pl.col(c).fill_null(pl.lit([], dtype=t)) for c, t in empty.items()
                            if c in out.columns)


def transform_partition(job) -> dict:
    partition, state, table, keep, keywords, vectors, chunk_rows, final, schema = job
    column = state.text_column
    lookup = Lookup.of(state, table)
    rows = 0

    def chunks():
        nonlocal rows
        for _, frame in iter_chunks(partition, list(dict.fromkeys([*keep, column])), chunk_rows,
                                    nan_as_null=()):
            made = vectorize(frame, state, lookup, column, keywords)
            if not vectors:
                made = made.drop(INDICES, WEIGHTS)
            rows += frame.height
            yield pl.concat([frame.select(keep), made], how="horizontal")

    write_partition(final, chunks(), schema, "zstd", chunk_rows, partition.options)
    return {"file": partition.rel, "rows": rows}


def output_schema(source: pl.Schema, keep, keywords: int, vectors: bool) -> pl.Schema:
    fields = {k: source[k] for k in keep}
    if vectors:
        fields.update({INDICES: pl.List(pl.Int64), WEIGHTS: pl.List(pl.Float64)})
    if keywords:
        fields[KEYWORDS] = pl.List(pl.String)
    return pl.Schema(fields)


def transform(state: TfidfState, inputs, out: str, *, keep: list[str] = (), keywords: int = 0,
              vectors: bool = True, chunk_rows: int = DEFAULT_CHUNK_ROWS,
              executor: Executor | None = None, storage_options: dict | None = None,
              ) -> list[dict]:
    """Write one Parquet file per input: kept columns, the sparse vector, keywords."""
    dataset = open_dataset(inputs, storage_options)
    _check_text(dataset, state.text_column)
    for name in keep:
        dataset.require(name, "--keep")
    check_out_dir(out, [p.path for p in dataset.partitions], dataset.root)
    table = state.weights_table()
    schema = output_schema(pl.Schema(dataset.schema), keep, keywords, vectors)
    return write_each(dataset.partitions, out, transform_partition,
                      lambda p, final: (p, state, table, list(keep), keywords, vectors,
                                        chunk_rows, final, schema),
                      executor=executor or Executor(), label="tf-idf", command="bigprep tfidf",
                      options=storage_options)


def to_csr(frame: pl.DataFrame, n_features: int):
    """An output partition's vectors as a ``scipy.sparse.csr_matrix`` for scikit-learn."""
    from scipy.sparse import csr_matrix

    lengths = frame[INDICES].list.len().to_numpy()
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = frame[INDICES].explode().drop_nulls().to_numpy()
    data = frame[WEIGHTS].explode().drop_nulls().to_numpy()
    return csr_matrix((data, indices, indptr), shape=(frame.height, n_features))


def idf_vector(state: TfidfState) -> np.ndarray:
    """idf by column id (zero for ids no longer kept), like ``TfidfVectorizer.idf_``."""
    table = state.weights_table()
    out = np.zeros(state.n_features)
    out[table[ID].to_numpy()] = table[IDF].to_numpy()
    return out
