"""TF-IDF vectors of a chunk: sorted term ids, weights and the top terms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ...engine.passes import MapDefaults
from ...errors import BigprepError
from ...io.dataset import Chunk, Dataset
from ...state.counts import DOC, TERM, TF
from .analyze import terms
from .vocabulary import ID, IDF, TfidfState

W = "weight"
INDICES, WEIGHTS, KEYWORDS = "tfidf_indices", "tfidf_weights", "keywords"


def hashed(occ: pl.DataFrame, n_features: int) -> pl.DataFrame:
    """Add HashingVectorizer's column of each term (murmurhash3, alternate_sign=False)."""
    from sklearn.utils import murmurhash3_32

    unique = occ[TERM].unique().to_list()
    columns = []
    for term in unique:
        h = murmurhash3_32(term, seed=0)
        columns.append((2147483647 - (n_features - 1)) % n_features if h == -2147483648
                       else abs(h) % n_features)
    return occ.with_columns(
        pl.col(TERM).replace_strict(unique, columns, return_dtype=pl.Int64).alias(ID))


def occurrences(texts: pl.Series, params) -> pl.DataFrame:
    occ = terms(texts, params.text)
    return hashed(occ, params.hash_features) if params.hash_features else occ


@dataclass
class Lookup:
    """What vectors need, built once per task: term ids, idf and names by id."""

    ids: pl.DataFrame | None  # TERM -> ID of the emitted terms (None when hashing)
    idf: np.ndarray  # by id; 0 where an id is not emitted
    names: pl.Series | None  # term by id, for keywords (None when hashing)

    @classmethod
    def of(cls, state: TfidfState, params) -> Lookup:
        table = state.weights_table(params)
        idf = np.zeros(max(state.n_features, 1))
        idf[table[ID].to_numpy()] = table[IDF].to_numpy()
        if state.params.hash_features:
            return cls(None, idf, None)
        names = np.full(len(idf), "", dtype=object)
        names[table[ID].to_numpy()] = table[TERM].to_numpy()
        return cls(table.select(TERM, ID), idf, pl.Series(TERM, names, dtype=pl.String))


_SHIFT = 1 << 32  # (document, term id) packed in one int64 key: sorted by document, then id


def vectorize(frame: pl.DataFrame, params, lookup: Lookup, column: str,
              keywords: int = 0) -> pl.DataFrame:
    """TF-IDF vectors of one chunk: sorted term ids and weights (and top terms)."""
    occ = occurrences(frame[column], params)
    if lookup.ids is not None:
        occ = occ.join(lookup.ids, on=TERM)  # only emitted terms, with their ids
    # term counts per (document, id): sorting one int64 key and run lengths beat a group-by
    runs = occ.select((pl.col(DOC) * _SHIFT + pl.col(ID)).sort().rle().alias("r")).unnest("r")
    counted = runs.select((pl.col("value") // _SHIFT).alias(DOC),
                          (pl.col("value") % _SHIFT).alias(ID), pl.col("len").alias(TF))
    tf = pl.col(TF).cast(pl.Float64)
    if params.sublinear_tf:
        tf = tf.log() + 1.0
    idf = pl.Series(IDF, lookup.idf[counted[ID].to_numpy()])
    weighted = counted.with_columns((tf * idf).alias(W))
    if params.norm == "l2":
        weighted = weighted.with_columns(pl.col(W) / (pl.col(W) ** 2).sum().sqrt().over(DOC))
    elif params.norm == "l1":
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


@dataclass
class TfidfTransform(MapDefaults):
    """The apply map of TF-IDF: kept columns, then the sparse vector and keywords."""

    params: object
    lookup: Lookup
    keep: list
    keywords: int
    vectors: bool
    schema: pl.Schema
    nan_as_null = ()  # kept columns pass untouched

    @classmethod
    def of(cls, state: TfidfState, params, dataset: Dataset, keep: list, keywords: int,
           vectors: bool) -> TfidfTransform:
        source = pl.Schema(dataset.schema)
        made = ([INDICES, WEIGHTS] if vectors else []) + ([KEYWORDS] if keywords else [])
        _refuse_collisions(keep, made)
        fields = {k: source[k] for k in keep}
        if vectors:
            fields.update({INDICES: pl.List(pl.Int64), WEIGHTS: pl.List(pl.Float64)})
        if keywords:
            fields[KEYWORDS] = pl.List(pl.String)
        return cls(params, Lookup.of(state, params), keep, keywords, vectors,
                   pl.Schema(fields))

    @property
    def reads(self) -> list[str]:
        return list(dict.fromkeys([*self.keep, self.params.text_column]))

    def transform(self, chunk: Chunk) -> pl.DataFrame:
        made = vectorize(chunk.frame, self.params, self.lookup, self.params.text_column,
                         self.keywords)
        if not self.vectors:
            made = made.drop(INDICES, WEIGHTS)
        return pl.concat([chunk.frame.select(self.keep), made], how="horizontal")


def _refuse_collisions(keep: list, made: list) -> None:
    clash = [c for c in keep if c in made]
    if clash:
        raise BigprepError(f"`keep` {clash[0]}: the output has a column of that name already "
                           f"({', '.join(made)}); rename the input column first.")


def to_csr(frame: pl.DataFrame, n_features: int):
    """An output partition's vectors as a ``scipy.sparse.csr_matrix`` for scikit-learn."""
    from scipy.sparse import csr_matrix

    lengths = frame[INDICES].list.len().to_numpy()
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = frame[INDICES].explode().drop_nulls().to_numpy()
    data = frame[WEIGHTS].explode().drop_nulls().to_numpy()
    return csr_matrix((data, indices, indptr), shape=(frame.height, n_features))
