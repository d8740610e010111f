"""Documents to terms, exactly as scikit-learn's TfidfVectorizer analyses them.

The default word analyzer (lowercase, ``(?u)\\b\\w\\w+\\b``, optional stop words and
word n-grams) runs as polars expressions: ``[\\p{L}\\p{N}_]{2,}`` in Rust's regex is
the same set of maximal runs of two or more word characters. So does the char
analyzer: runs of two or more whitespace characters (Python's ``\\s``, spelled out)
become one space, then every n-gram of characters; char_wb pads every word with a
space first. jieba's words are cut per document (``segment``), then stop words and
n-grams run as polars expressions. Everything else (a custom token pattern, accent
stripping) calls scikit-learn's own analyzer per document, so it is exact by
construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

from ...errors import BigprepError
from ...state.counts import DOC, TERM

DEFAULT_PATTERN = r"(?u)\b\w\w+\b"
FAST_PATTERN = r"[\p{L}\p{N}_]{2,}"
WORD = "__bp_word"  # a word's number, for char_wb
# what Python's re calls \s in a str pattern (str.isspace): Rust's \s lacks \x1c-\x1f
PY_SPACE = "[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


@dataclass(frozen=True)
class TextOptions:
    """The analysis parameters; stored in the state by name, never as code."""

    analyzer: str = "word"  # word | char | char_wb
    ngram_range: tuple[int, int] = (1, 1)
    lowercase: bool = True
    token_pattern: str = DEFAULT_PATTERN
    stop_words: tuple[str, ...] | str | None = None  # "english" or a tuple of words
    tokenizer: str | None = None  # None or "jieba"
    strip_accents: str | None = None  # None | ascii | unicode

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ngram_range"] = list(self.ngram_range)
        if isinstance(self.stop_words, tuple):
            data["stop_words"] = list(self.stop_words)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TextOptions:
        data = dict(data)
        data["ngram_range"] = tuple(data["ngram_range"])
        if isinstance(data.get("stop_words"), list):
            data["stop_words"] = tuple(data["stop_words"])
        return cls(**data)

    def sklearn_params(self) -> dict:
        """The same options as TfidfVectorizer / HashingVectorizer keywords."""
        params = {"analyzer": self.analyzer, "ngram_range": self.ngram_range,
                  "lowercase": self.lowercase, "strip_accents": self.strip_accents,
                  "stop_words": self._stop_list()}
        if self.tokenizer == "jieba":
            params.update(tokenizer=_jieba_cut(), token_pattern=None)
        else:
            params["token_pattern"] = self.token_pattern
        return params

    def _stop_list(self):
        if self.stop_words == "english":
            return "english"
        return list(self.stop_words) if self.stop_words else None

    @property
    def jieba_words(self) -> bool:
        """Words cut by jieba, then scikit-learn's stop words and n-grams (in polars)."""
        return (self.tokenizer == "jieba" and self.analyzer == "word"
                and self.strip_accents is None)

    @property
    def fast(self) -> bool:
        """Whether polars expressions analyse the text (else scikit-learn, per document)."""
        if self.strip_accents is not None:
            return False
        if self.analyzer in ("char", "char_wb"):
            return True
        return (self.analyzer == "word" and self.tokenizer is None
                and self.token_pattern == DEFAULT_PATTERN)


def _jieba_cut():
    from .segment import jieba_lcut

    cut = jieba_lcut()
    if cut is None:
        raise BigprepError("`tokenizer` jieba needs the jieba package: "
                           "pip install 'bigprep[zh]'")
    return cut


def stop_set(options: TextOptions) -> frozenset:
    if options.stop_words == "english":
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        return frozenset(ENGLISH_STOP_WORDS)
    return frozenset(options.stop_words or ())


def terms(texts: pl.Series, options: TextOptions) -> pl.DataFrame:
    """One row per term occurrence: (document index within the chunk, term).

    Null documents are empty documents.
    """
    texts = texts.cast(pl.String).fill_null("")  # dictionary-encoded text is text
    if options.fast:
        text = pl.col("t").str.to_lowercase() if options.lowercase else pl.col("t")
        if options.analyzer == "char_wb":
            return _char_wb_terms(texts, text, options.ngram_range)
        if options.analyzer == "char":
            text = text.str.replace_all(f"{PY_SPACE}{{2,}}", " ")
            pieces, separator = text.str.extract_all("(?s)."), ""
        else:
            pieces, separator = text.str.extract_all(FAST_PATTERN), " "
        return _tokens_to_terms(pl.DataFrame({"t": texts}).select(pieces.alias(TERM)),
                                options, separator)
    if options.jieba_words:  # scikit-learn's analyzer with jieba, without its per-doc Python
        from .segment import segment

        pieces = segment(texts.str.to_lowercase() if options.lowercase else texts)
        if pieces is None:
            _jieba_cut()  # says what to install
        return _tokens_to_terms(pl.DataFrame({TERM: pieces}), options, " ")
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyze = TfidfVectorizer(**options.sklearn_params()).build_analyzer()
    lists = [analyze(doc) for doc in texts.to_list()]
    return (pl.DataFrame({TERM: pl.Series(lists, dtype=pl.List(pl.String))})
            .with_row_index(DOC).explode(TERM).drop_nulls(TERM)
            .with_columns(pl.col(DOC).cast(pl.Int64)))


def _char_wb_terms(texts: pl.Series, text: pl.Expr, ngram_range: tuple[int, int]
                   ) -> pl.DataFrame:
    """scikit-learn's ``_char_wb_ngrams``: every word (a run of non-whitespace) padded
    with a space on each side, then its character n-grams; a padded word shorter than
    the smallest n counts once, whole."""
    low, _ = ngram_range
    words = (pl.DataFrame({"t": texts})
             .select(text.str.replace_all(f"{PY_SPACE}{{2,}}", " ")
                     .str.extract_all(PY_SPACE.replace("[", "[^", 1) + "+").alias(TERM))
             .with_row_index(DOC).explode(TERM).drop_nulls(TERM)
             .with_columns((" " + pl.col(TERM) + " ").alias(TERM))
             .with_row_index(WORD).with_columns(pl.col(WORD).cast(pl.Int64)))
    chars = words.select(pl.col(WORD).alias(DOC), pl.col(TERM).str.extract_all("(?s)."))
    grams = _ngrams(chars.explode(TERM), ngram_range, "").rename({DOC: WORD})
    short = words.filter(pl.col(TERM).str.len_chars() < low).select(WORD, TERM)
    return (pl.concat([grams, short]).join(words.select(WORD, DOC), on=WORD)
            .select(pl.col(DOC).cast(pl.Int64), TERM))


def _tokens_to_terms(lists: pl.DataFrame, options: TextOptions, separator: str
                     ) -> pl.DataFrame:
    """Each document's token list (column TERM) to (DOC, TERM) rows: stop words out,
    then the n-grams, as scikit-learn's ``_word_ngrams`` / ``_char_ngrams``."""
    tokens = lists.with_row_index(DOC).explode(TERM).drop_nulls(TERM)
    stops = stop_set(options) if options.analyzer == "word" else ()
    if stops:
        tokens = tokens.filter(~pl.col(TERM).is_in(list(stops)))
    return _ngrams(tokens.with_columns(pl.col(DOC).cast(pl.Int64)), options.ngram_range,
                   separator)


def _ngrams(tokens: pl.DataFrame, ngram_range: tuple[int, int], separator: str
            ) -> pl.DataFrame:
    """N-grams of consecutive tokens within each document, joined by ``separator`` (a
    space for words, nothing for characters, as scikit-learn)."""
    low, high = ngram_range
    if (low, high) == (1, 1):
        return tokens
    parts = [tokens.select(DOC, TERM)] if low <= 1 else []
    shifted = [pl.col(TERM)]
    for n in range(2, high + 1):
        # the token n-1 rows on, when it is of the same document (tokens are in order)
        same = pl.col(DOC).shift(-(n - 1)) == pl.col(DOC)
        shifted.append(pl.when(same).then(pl.col(TERM).shift(-(n - 1))))
        if n >= low:
            gram = pl.concat_str(shifted, separator=separator)  # null where the doc ran out
            parts.append(tokens.select(DOC, gram.alias(TERM)).drop_nulls(TERM))
    return pl.concat(parts)
