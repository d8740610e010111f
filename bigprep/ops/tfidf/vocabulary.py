"""The fitted TF-IDF state: raw term counts and a stable vocabulary.

The state keeps per term the number of documents holding it (df) and its total
count (tf, for ``max_features``), and the number of documents; never the idf,
which is recomputed from the counts whenever vectors are made. Term ids are
stable: a fresh fit numbers the kept terms alphabetically (as scikit-learn's
``vocabulary_``); an update keeps every id it gave and appends new terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ...errors import BigprepError
from ...io.statefile import now
from ...io.values import frame_from_bytes, frame_to_bytes
from ...state.counts import DF, TERM, TF, TermCounts

ID, IDF = "id", "idf"


@dataclass
class TfidfState:
    """Parameters, counts and the stable vocabulary (term -> id)."""

    params: object  # operation.TfidfParams
    counts: TermCounts = field(default_factory=TermCounts)
    vocabulary: pl.DataFrame | None = None  # TERM, ID: every id ever given
    seen: list = field(default_factory=list)  # [path, rows] of every partition counted
    created: str = field(default_factory=now)
    updates: int = 0

    @property
    def documents(self) -> int:
        return self.counts.documents

    # -- which terms, which ids, which idf -------------------------------------------
    def kept(self) -> pl.DataFrame:
        """The terms that pass min_df / max_df / max_features now, with their df."""
        p, n = self.params, self.documents
        counts = self.counts.counts if self.counts.counts is not None else pl.DataFrame(
            schema={TERM: pl.String, DF: pl.Int64, TF: pl.Int64})
        if p.hash_features:
            return counts
        if not n:
            raise BigprepError(f"`text_column` {p.text_column}: the inputs hold no documents "
                               "(every partition has 0 rows); give partitions with rows.")
        high = p.max_df if isinstance(p.max_df, int) else p.max_df * n
        low = p.min_df if isinstance(p.min_df, int) else p.min_df * n
        if high < low:
            raise BigprepError(f"`max_df` {p.max_df} keeps fewer documents ({high:g}) than "
                               f"`min_df` {p.min_df} ({low:g}): raise `max_df` or lower "
                               "`min_df`.")
        kept = counts.filter((pl.col(DF) >= low) & (pl.col(DF) <= high)).sort(TERM)
        if p.max_features is not None:
            # numpy's own argsort over the alphabetical order, as scikit-learn does it, so
            # ties between equally frequent terms fall the same way
            order = (-kept[TF].to_numpy()).argsort()[:p.max_features]
            kept = kept[np.sort(order)]
        if kept.height == 0 and counts.height:
            raise BigprepError(
                f"after pruning, no terms remain: of {counts.height:,} terms in {n:,} documents, "
                f"none is in at least {low:g} (`min_df` {p.min_df}) and at most {high:g} "
                f"(`max_df` {p.max_df}) documents. Lower `min_df` or raise `max_df`.")
        return kept

    def updated(self, params, counts: TermCounts, seen: list,
                refit: bool = False) -> TfidfState:
        """The next state: ``counts`` and ``seen`` (all of them, merged by the caller),
        ids assigned (new terms appended, or all renumbered with ``refit``)."""
        state = TfidfState(params, counts, self.vocabulary, seen, self.created,
                           self.updates + 1)
        state.assign_ids(refit=refit)
        return state

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

    def weights_table(self, params=None) -> pl.DataFrame:
        """Per emitted term: TERM (absent when hashing), ID and IDF (with ``params``'
        idf options, when given: they act on the counts, so they may change)."""
        p, n = params or self.params, self.documents
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

    def idf(self) -> np.ndarray:
        """idf by column id (zero for ids no longer kept), like ``TfidfVectorizer.idf_``."""
        table = self.weights_table()
        out = np.zeros(self.n_features)
        out[table[ID].to_numpy()] = table[IDF].to_numpy()
        return out

    # -- the saved payload -----------------------------------------------------------------
    def to_payload(self, sidecar: dict) -> dict:
        if self.vocabulary is not None:
            sidecar["vocabulary"] = frame_to_bytes(self.vocabulary)
        return {"documents": self.documents, "partitions": len(self.seen),
                "vocabulary_size": self.n_features,
                "counts": self.counts.to_payload(sidecar, "counts")}

    @classmethod
    def from_payload(cls, params, data: dict, sidecar: dict, seen: list, created: str,
                     updates: int) -> TfidfState:
        vocabulary = frame_from_bytes(sidecar["vocabulary"]) if "vocabulary" in sidecar \
            else None
        return cls(params, TermCounts.from_payload(data["counts"], sidecar, "counts"),
                   vocabulary, seen, created, updates)
