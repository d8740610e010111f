"""Chinese words exactly as jieba 0.42 cuts them (``jieba.lcut``), at jieba-rs speed.

rjieba (jieba-rs 0.11 through rjieba 0.2.2) has jieba's dictionary and HMM model and
cuts Chinese text identically, 28x faster. It differs in two places, both undone here
(found by comparing the two on 180,000 documents: the bundled and a 100k-document
corpus, a novel, hand-written and random mixed-script strings; tests/test_tfidf.py
keeps the comparison):

1. jieba's Chinese blocks are U+4E00-U+9FD5; other ideographs (extension A, U+9FD6
   onwards, compatibility ideographs, extensions B-F) it emits one character at a
   time, where jieba-rs joins them into words;
2. jieba splits unknown runs of letters and digits with ``[a-zA-Z0-9]+(?:\\.\\d+)?%?``,
   where jieba-rs keeps them joined across ``.``, ``_`` and ``-`` (``v1.2.3``).

Only that exact rjieba release is used (its behaviour is what was compared); anything
else falls back to jieba itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import polars as pl

RJIEBA_VERSION = "0.2.2"
# ideographs jieba-rs counts as Chinese and jieba (U+4E00-U+9FD5) does not
_OTHER_HAN_RANGES = [(0x3400, 0x4DBF), (0x9FD6, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF),
                     (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
                     (0x2CEB0, 0x2EBEF), (0x2F800, 0x2FA1F)]
_OTHER_HAN = re.compile("([" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _OTHER_HAN_RANGES)
                        + "])")
# the same test for a whole column at once (Rust's regex syntax): a text with neither
# such an ideograph nor a . _ - needs no fix-up
_NEEDS_FIXING = ("[._\\-" + "".join(f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in _OTHER_HAN_RANGES)
                 + "]")
_SEPARATOR = "\x1f"  # joins a document's tokens for polars to split
_JOINER = re.compile(r"[._\-]")
_JIEBA_RUN = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")  # jieba.finalseg.re_skip


def _joined(token: str) -> bool:
    """A run of letters and digits that jieba-rs kept across a . _ or -."""
    return len(token) > 2 and token.isascii() and token[0].isalnum() and \
        _JOINER.search(token) is not None


def exact_cut(cut: Callable[[str, bool], list[str]]) -> Callable[[str], list[str]]:
    """``jieba.lcut`` from jieba-rs's ``cut(text, hmm)``."""
    def lcut(text: str) -> list[str]:
        if not _OTHER_HAN.search(text):
            tokens = cut(text, True)
            if "." not in text and "_" not in text and "-" not in text:
                return tokens  # the common case: nothing to undo, nothing to look at
            if not any(_joined(t) for t in tokens):
                return tokens
        out: list[str] = []
        for k, piece in enumerate(_OTHER_HAN.split(text)):
            if k % 2:  # an ideograph outside jieba's blocks: a token of its own
                out.append(piece)
                continue
            for token in cut(piece, True) if piece else ():
                if _joined(token):
                    out.extend(x for x in _JIEBA_RUN.split(token) if x)
                else:
                    out.append(token)
        return out
    return lcut


def segment(texts: pl.Series) -> pl.Series | None:
    """``jieba.lcut`` of every text (no nulls) as a list column; None without jieba.

    The texts are tested for the fix-ups in one vectorised pass, so most documents go
    straight to jieba-rs; the token lists reach polars joined into one string each
    (one split in Rust instead of a Python object per token)."""
    docs = texts.to_list()
    cut = jieba_lcut()
    if cut is None:
        return None
    raw = _rjieba_cut()
    if raw is not None:
        plain = (~texts.str.contains(_NEEDS_FIXING)).to_list()
        tokens = [raw(d, True) if p else cut(d) for d, p in zip(docs, plain)]
    else:
        tokens = [cut(d) for d in docs]
    if texts.str.contains(_SEPARATOR, literal=True).any():
        return pl.Series(tokens, dtype=pl.List(pl.String))
    joined = pl.Series([_SEPARATOR.join(t) for t in tokens], dtype=pl.String)
    return pl.select(pl.when(joined == "").then(pl.lit([], pl.List(pl.String)))
                     .otherwise(joined.str.split(_SEPARATOR))).to_series()


@functools.cache  # once a process: each chunk of each pass asks
def _rjieba_cut():
    """jieba-rs's ``cut(text, hmm)``, when the release compared with jieba is installed."""
    try:
        from importlib.metadata import version

        import rjieba
    except ImportError:
        return None
    return rjieba.cut if version("rjieba") == RJIEBA_VERSION else None


@functools.cache
def jieba_lcut() -> Callable[[str], list[str]] | None:
    """The fastest exact ``jieba.lcut`` installed, or None when neither is."""
    raw = _rjieba_cut()
    if raw is not None:
        return exact_cut(raw)
    try:
        import jieba
    except ImportError:
        return None
    jieba.setLogLevel(60)
    return jieba.lcut
