"""``tfidf`` as an operation: TfidfVectorizer's parameters, declared once, and its passes.

fit is a reduction of term counts (``state.counts.TermCounts``) over chunks;
finishing numbers the kept terms; apply writes each document's vector and keywords.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...errors import BigprepError
from ...io.dataset import Dataset
from ...state.counts import TermChunk, TermCounts
from ..base import Operation, Params, register, seen_of
from .analyze import DEFAULT_PATTERN, TextOptions
from .vectors import TfidfTransform, occurrences
from .vocabulary import TfidfState


class TfidfParams(Params):
    """scikit-learn's TfidfVectorizer parameters (same names, same meaning)."""

    text_column: str = Field(description="The column holding the text.")
    analyzer: Literal["word", "char", "char_wb"] = "word"
    ngram_range: tuple[int, int] = (1, 1)
    lowercase: bool = True
    token_pattern: str = DEFAULT_PATTERN
    stop_words: Literal["english"] | tuple[str, ...] | None = Field(
        None, description="'english' or the words to drop.")
    tokenizer: Literal["jieba"] | None = Field(None, description="jieba for Chinese words.")
    strip_accents: Literal["ascii", "unicode"] | None = None
    min_df: float | int = Field(1, ge=0, description="Keep terms in at least this many "
                                "documents (an int) or this share of them (a float).")
    max_df: float | int = Field(1.0, ge=0, description="Keep terms in at most this many "
                                "documents (an int) or this share of them (a float).")
    max_features: int | None = Field(None, ge=1)
    norm: Literal["l1", "l2"] | None = "l2"
    use_idf: bool = True
    smooth_idf: bool = True
    sublinear_tf: bool = False
    hash_features: int | None = Field(None, ge=2, description="No vocabulary: hash terms "
                                      "into this many columns (as HashingVectorizer).")

    @field_validator("ngram_range")
    @classmethod
    def _ngrams(cls, value):
        if not 1 <= value[0] <= value[1]:
            raise ValueError("need 1 <= min_n <= max_n")
        return value

    @field_validator("token_pattern")
    @classmethod
    def _pattern(cls, value):
        try:
            groups = re.compile(value).groups
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        if groups > 1:  # scikit-learn's rule: the one group is the token
            raise ValueError("more than one capturing group; use (?:...) for the others")
        return value

    @field_validator("min_df", "max_df")
    @classmethod
    def _share(cls, value):
        if isinstance(value, float) and value > 1:
            raise ValueError("a proportion in [0.0, 1.0] or a count of documents (an int)")
        return value

    @model_validator(mode="after")
    def _hashing(self):
        if self.hash_features is not None and (self.min_df != 1 or self.max_df != 1.0
                                               or self.max_features):
            raise ValueError("`hash_features` keeps no vocabulary, so `min_df`, `max_df` and "
                             "`max_features` do not apply; leave them out")
        return self

    @property
    def text(self) -> TextOptions:
        stop = self.stop_words
        return TextOptions(self.analyzer, tuple(self.ngram_range), self.lowercase,
                           self.token_pattern, tuple(stop) if isinstance(stop, (list, tuple))
                           else stop, self.tokenizer, self.strip_accents)


@register
class Tfidf(Operation):
    name = "tfidf"
    title = "TF-IDF"
    Params = TfidfParams

    def plan(self, dataset: Dataset, prior):
        column = self.params.text_column
        dataset.require(column, "text_column")
        dtype = dataset.polars_schema[column]
        if str(dtype) not in ("String", "Categorical") and not str(dtype).startswith("Enum"):
            raise BigprepError(f"`text_column` {column}: the column is {dtype}, not text "
                               f"(first file {dataset.partitions[0].path}). Name a string "
                               "column.")
        if self.params.tokenizer == "jieba":
            self.params.text.sklearn_params()  # fail early if jieba is missing
        return column

    def reduction(self, plan, dataset, prior, learn):
        return TermCounts() if learn else None

    def reads(self, plan, template) -> list[str]:
        return [plan]

    def prepare(self, plan):
        return _Occurrences(self.params, plan)

    def finish(self, plan, counts, dataset, prior, learn, refit: bool = False):
        if not learn:
            return prior
        if prior is None:
            state = TfidfState(self.params, counts, seen=seen_of(dataset))
            state.assign_ids()
            return state
        return prior.updated(self.params, prior.counts.merge(counts),
                             prior.seen + seen_of(dataset), refit)

    def transformer(self, fitted, dataset: Dataset, *, keep=(), keywords: int = 0,
                    vectors: bool = True) -> TfidfTransform:
        dataset.require_each(list(keep), "keep")
        return TfidfTransform.of(fitted, self.params, dataset, list(keep), keywords, vectors)


class _Occurrences:
    """Chunk -> term occurrences (a plain object, so it pickles to workers)."""

    def __init__(self, params: TfidfParams, column: str):
        self.params, self.column = params, column

    def __call__(self, chunk) -> TermChunk:
        occ = occurrences(chunk.frame[self.column], self.params)
        if self.params.hash_features:
            occ = occ.drop("__bp_term").rename({"id": "__bp_term"})
        return TermChunk(occ, chunk.frame.height)
