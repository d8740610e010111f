"""TF-IDF out of core equals scikit-learn's, and updates equal fitting everything."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer

import bigprep
from bigprep.cli import main
from bigprep.ops.tfidf.analyze import TextOptions, terms
from bigprep.ops.tfidf.vectors import to_csr
from bigprep.state.counts import DOC, TERM, TermChunk, TermCounts
from tests.helpers import read_output, write_partitions

DOCS = [
    "The quick brown fox", "jumps over the lazy dog", None, "",
    "x² naïve café e\u0301 combining, superscript x² and ² alone",  # accents, marks
    "CJK 中文字符 测试 runs, under_score snake_case 42 abc123 1 a",  # digits, underscores
    "The the THE fox fox fox", "dog cat", "Lazy dogs and quick cats",
    "über straße ÉCOLE Ǆemal ﬁne",  # case folding, ligatures
] * 3


def vectors(tmp_path, docs, params: dict, sizes=(7, 0, 1, 22), chunk_rows=4, name="out"):
    paths = write_partitions(pl.DataFrame({"id": range(len(docs)), "body": docs},
                                          schema={"id": pl.Int64, "body": pl.String}),
                             tmp_path / "in", list(sizes))
    v = bigprep.TfidfVectorizer(**params, chunk_rows=chunk_rows).fit(paths, text_column="body")
    v.transform(paths, out=str(tmp_path / name), keep=["id"], keywords=3)
    out = read_output(tmp_path / name, paths)
    return v, out, to_csr(out, v.state_.n_features).toarray()


@pytest.mark.parametrize("kw", [
    {}, {"ngram_range": (1, 2)}, {"ngram_range": (2, 3)}, {"min_df": 2, "max_df": 0.5},
    {"min_df": 0.1, "max_df": 5}, {"max_features": 5}, {"norm": "l1"}, {"norm": None},
    {"use_idf": False}, {"smooth_idf": False}, {"sublinear_tf": True},
    {"stop_words": "english"}, {"stop_words": ("fox", "dog"), "ngram_range": (1, 2)},
    {"lowercase": False}, {"strip_accents": "unicode"}, {"token_pattern": r"(?u)\b\w+\b"},
    {"analyzer": "char", "ngram_range": (1, 2)}, {"analyzer": "char_wb", "ngram_range": (2, 4)},
])
def test_transform_equals_tfidfvectorizer(tmp_path, kw):
    v, out, got = vectors(tmp_path, DOCS, kw)
    reference = TfidfVectorizer(**{k: list(v) if isinstance(v, tuple) and k == "stop_words"
                                   else v for k, v in kw.items()})
    expected = reference.fit_transform([d or "" for d in DOCS]).toarray()
    assert v.state_.vocabulary.sort("id")[TERM].to_list() == \
        reference.get_feature_names_out().tolist()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert out["id"].to_list() == list(range(len(DOCS)))
    assert all(w == sorted(w) for w in out["tfidf_indices"].to_list())  # sorted, as CSR


def test_hashing_mode_equals_hashing_vectorizer_with_transformer(tmp_path):
    params = {"hash_features": 2**10, "sublinear_tf": True}
    v, _, got = vectors(tmp_path, DOCS, params)
    counts = HashingVectorizer(n_features=2**10, alternate_sign=False, norm=None)
    expected = TfidfTransformer(sublinear_tf=True).fit_transform(
        counts.transform([d or "" for d in DOCS])).toarray()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert v.state_.vocabulary is None


def test_chinese_with_jieba_equals_tfidfvectorizer(tmp_path):
    jieba = pytest.importorskip("jieba")
    docs = ["我爱北京天安门", "今天天气很好，我们去公园散步", "北京的天气今天很好", None,
            "机器学习和数据处理", "数据太大，内存装不下"] * 2
    params = {"tokenizer": "jieba"}
    v, out, got = vectors(tmp_path, docs, params, sizes=(5, 7))
    reference = TfidfVectorizer(tokenizer=jieba.lcut, token_pattern=None)
    expected = reference.fit_transform([d or "" for d in docs]).toarray()
    assert v.state_.vocabulary.sort("id")[TERM].to_list() == \
        reference.get_feature_names_out().tolist()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    names = reference.get_feature_names_out()
    for row, words in zip(expected, out["keywords"].to_list()):
        ranked = sorted((-w, t) for t, w in zip(names, row) if w > 0)[:3]
        assert words == [t for _, t in ranked]


# what jieba-rs and jieba were found to cut differently (bigprep.ops.tfidf.segment), and
# what a newcomer's text holds: every script, ideographs outside U+4E00-U+9FD5, runs of
# letters and digits across . _ -, whitespace of every kind, emoji
_HAN = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会北京清华大学龘靐"
_SEGMENT_CHARS = (list(_HAN) + list("abcxyzABC0123456789") + list("._-%+#&'/:@?=!,;()")
                  + list("，。！？：；“”（）【】《》、…—") + [" ", "\t", "\n", "\r", "\u3000", "\xa0"]
                  + ["\u3400", "\u4dbf", "\u9fd6", "\u9fff", "\uf900", "\U00020000",
                     "\U0002b740", "\U0002f800", "\U00030000", "😀", "🏽", "ア", "한", "Σ", "İ"])
_SEGMENT_CASES = ["", "版本v1.2.3发布", "2024-05-01上午10:30开会", "电话：010-12345678",
                  "访问https://www.example.com/path?q=中文&x=1查看", "邮箱test.user@example.com",
                  "生僻字𠀀𠀁𪚥面", "扩展A区㐀㐁㐂字", "鿖鿗鿘鿿新字", "测试_下划线_test", "a.b.c中文",
                  "nathank.mao", "forget-me-not", "GDP增长了3.14%，CPI上涨2.5%", "It's 中文 don't"]


def _exact_cut():
    pytest.importorskip("rjieba")
    from importlib.metadata import version

    from bigprep.ops.tfidf.segment import RJIEBA_VERSION, jieba_lcut
    if version("rjieba") != RJIEBA_VERSION:
        pytest.skip(f"rjieba {version('rjieba')} is not the release compared with jieba")
    return jieba_lcut()


def test_jieba_rs_cuts_as_jieba_on_the_bundled_text_and_the_known_differences():
    jieba = pytest.importorskip("jieba")
    cut = _exact_cut()
    sample = Path(__file__).resolve().parents[1] / "sample_data" / "text" / "zh"
    bundled = pl.read_parquet(sample / "*.parquet")["body"].drop_nulls().to_list()
    for doc in bundled + _SEGMENT_CASES:
        assert cut(doc.lower()) == jieba.lcut(doc.lower()), doc


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(_SEGMENT_CHARS), max_size=60) | st.text(max_size=30))
def test_jieba_rs_cuts_as_jieba_on_any_text(doc):
    jieba = pytest.importorskip("jieba")
    assert _exact_cut()(doc) == jieba.lcut(doc)


def test_default_tokens_on_chinese_text_match_scikit_learn(tmp_path):
    docs = ["中文字符测试 和 English words", "数据 数据 处理", "日本語のテキスト"]
    _, _, got = vectors(tmp_path, docs, {}, sizes=(1, 2))
    np.testing.assert_allclose(got, TfidfVectorizer().fit_transform(docs).toarray(), atol=1e-12)


def term_weights(v, out) -> list[dict]:
    vocabulary = v.state_.vocabulary
    names = dict(zip(vocabulary["id"].to_list(), vocabulary[TERM].to_list()))
    return [{names[i]: round(w, 12) for i, w in zip(ids, ws)}
            for ids, ws in zip(out["tfidf_indices"].to_list(), out["tfidf_weights"].to_list())]


def test_update_equals_fitting_everything_and_keeps_ids(tmp_path):
    old, new = DOCS[:12], DOCS[12:] + ["brand new words appear", "zebra aardvark"]
    frame = pl.DataFrame({"id": range(len(old + new)), "body": old + new})
    a = write_partitions(frame.head(12), tmp_path / "a", [5, 7])
    b = write_partitions(frame.tail(len(new)), tmp_path / "b", [10, 10])
    both = write_partitions(frame, tmp_path / "ab", [5, 7, 10, 10])
    params = {"min_df": 2}
    first = bigprep.TfidfVectorizer(**params).fit(a, text_column="body")
    updated = copy.deepcopy(first).partial_fit(b)  # partial_fit mutates: keep `first` as fitted
    full = bigprep.TfidfVectorizer(**params).fit(both, text_column="body")
    assert updated.documents_ == full.documents_ == len(old + new)
    assert updated.state_.counts.counts.sort(TERM).equals(full.state_.counts.counts.sort(TERM))
    kept_before = dict(first.state_.vocabulary.iter_rows())
    assert {t: i for t, i in updated.state_.vocabulary.iter_rows() if t in kept_before} == \
        kept_before
    updated.transform(both, out=str(tmp_path / "u"))
    full.transform(both, out=str(tmp_path / "f"))
    assert term_weights(updated, read_output(tmp_path / "u", both)) == \
        term_weights(full, read_output(tmp_path / "f", both))
    refit = copy.deepcopy(first).partial_fit(b, refit=True)
    assert refit.state_.vocabulary.equals(full.state_.vocabulary)


def test_state_survives_a_json_round_trip(tmp_path):
    v = bigprep.TfidfVectorizer(max_features=7).fit(
        write_partitions(pl.DataFrame({"body": DOCS}), tmp_path / "in", [30]), text_column="body")
    v.save(str(tmp_path / "s.json"))
    back = bigprep.TfidfVectorizer.load(str(tmp_path / "s.json"))
    assert back.state_.params == v.state_.params and back.documents_ == v.documents_
    assert back.state_.counts.counts.equals(v.state_.counts.counts.sort(TERM))  # saved sorted
    assert back.state_.vocabulary.equals(v.state_.vocabulary)
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["payload"]["documents"] == 30 and saved["parameters"]["max_features"] == 7


words = st.lists(st.sampled_from(["a1", "bb", "cc", "dd ee", "ff gg hh", "", "bb bb"]),
                 max_size=8)


def counts_of(docs):
    frame = pl.Series(docs, dtype=pl.String)
    return TermCounts().update(TermChunk(terms(frame, TextOptions()), len(docs)))


def canon(state):
    rows = None if state.counts is None else sorted(state.counts.rows())
    return state.documents, rows


@given(words, words, words)
@settings(max_examples=50, deadline=None)
def test_document_counts_merge_laws(a, b, c):
    x, y, z = counts_of(a), counts_of(b), counts_of(c)
    assert canon(x.merge(y).merge(z)) == canon(x.merge(y.merge(z))) == canon(counts_of(a + b + c))
    assert canon(x.merge(TermCounts())) == canon(x) == canon(TermCounts().merge(x))


def test_keywords_are_top_terms_with_ties_broken_by_term(tmp_path):
    docs = ["zeta alpha beta", "alpha alpha gamma"]
    _, out, _ = vectors(tmp_path, docs, {}, sizes=(2,))
    assert out["keywords"].to_list()[0] == ["beta", "zeta", "alpha"]  # beta, zeta tie: by term
    assert out["keywords"].to_list()[1][0] == "alpha"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_fit_update_transform_keywords(tmp_path):
    frame = pl.DataFrame({"id": range(len(DOCS)), "title": ["t"] * len(DOCS), "body": DOCS})
    old = write_partitions(frame.head(20), tmp_path / "old", [10, 10])
    new = write_partitions(frame.tail(10), tmp_path / "new", [10])
    state = tmp_path / "tfidf.json"
    result = invoke("tfidf", "fit", *old, "--text-column", "body", "--state", state,
                    "--ngram", "1,2", "--sublinear-tf")
    assert result.exit_code == 0, result.output
    assert "documents" in result.stderr
    assert invoke("tfidf", "update", *new, "--state", state, "-q").exit_code == 0
    assert json.loads(state.read_text())["payload"]["documents"] == len(DOCS)
    result = invoke("tfidf", "transform", *new, "--state", state, "--out", tmp_path / "v",
                    "--keep", "id,title", "--keywords", "4", "-q")
    assert result.exit_code == 0, result.output
    out = read_output(tmp_path / "v", new)
    assert out.columns == ["id", "title", "tfidf_indices", "tfidf_weights", "keywords"]
    result = invoke("tfidf", "keywords", *new, "--state", state, "--top", "2", "--out",
                    tmp_path / "k", "--keep", "id", "-q")
    assert result.exit_code == 0, result.output
    assert read_output(tmp_path / "k", new).columns == ["id", "keywords"]


def test_cli_fit_with_out_writes_what_fit_then_transform_write(tmp_path):
    frame = pl.DataFrame({"id": range(len(DOCS)), "body": DOCS})
    paths = write_partitions(frame, tmp_path / "in", [10, 20])
    common = ["--text-column", "body", "--ngram", "1,2", "-q"]
    assert invoke("tfidf", "fit", *paths, *common, "--state", tmp_path / "a.json", "--out",
                  tmp_path / "one", "--keep", "id", "--keywords", "3").exit_code == 0
    assert invoke("tfidf", "fit", *paths, *common, "--state", tmp_path / "b.json").exit_code == 0
    assert invoke("tfidf", "transform", *paths, "--state", tmp_path / "b.json", "--out",
                  tmp_path / "two", "--keep", "id", "--keywords", "3", "-q").exit_code == 0
    one, two = read_output(tmp_path / "one", paths), read_output(tmp_path / "two", paths)
    assert one.columns == ["id", "tfidf_indices", "tfidf_weights", "keywords"]
    assert one.equals(two)
    assert json.loads((tmp_path / "a.json").read_text())["payload"] == \
        json.loads((tmp_path / "b.json").read_text())["payload"]
    result = invoke("tfidf", "fit", *paths, *common, "--state", tmp_path / "c.json",
                    "--keywords", "3")
    assert result.exit_code == 2 and "--out" in result.stderr
    for command in (["fit", "--text-column", "body", "--state", tmp_path / "d.json"],
                    ["transform", "--state", tmp_path / "b.json"]):
        result = invoke("tfidf", command[0], *paths, *command[1:], "--out",
                        tmp_path / "three", "--keep", "id,id", "-q")
        assert result.exit_code == 1 and "--keep id: named twice" in result.stderr
    assert not (tmp_path / "three").exists() and not (tmp_path / "d.json").exists()


@pytest.mark.parametrize("args, words", [
    (["--text-column", "nope"], ["'nope'", "not in the data"]),
    (["--text-column", "id"], ["Int64", "not text"]),
    (["--text-column", "body", "--min-df", "25"], ["no terms remain", "--min-df"]),
    (["--text-column", "body", "--min-df", "50"], ["--max-df", "--min-df 50"]),
    (["--text-column", "body", "--min-df", "5", "--max-df", "2"], ["--max-df", "--min-df"]),
    (["--text-column", "body", "--hash-features", "64", "--min-df", "2"], ["--hash-features"]),
])
def test_tfidf_bad_input_is_one_clear_message(tmp_path, args, words):
    paths = write_partitions(pl.DataFrame({"id": range(len(DOCS)), "body": DOCS}),
                             tmp_path / "in", [30])
    result = invoke("tfidf", "fit", *paths, "--state", tmp_path / "s.json", *args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    for word in words:
        assert word in result.stderr
    assert not (tmp_path / "s.json").exists()


def test_a_state_of_another_kind_is_refused(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"format": "bigprep.impute/1"}))
    paths = write_partitions(pl.DataFrame({"body": ["a b"]}), tmp_path / "in", [1])
    result = invoke("tfidf", "update", *paths, "--state", tmp_path / "s.json")
    assert result.exit_code == 1 and "not a bigprep TF-IDF state" in result.stderr


@pytest.mark.parametrize("command", [["tfidf"], ["tfidf", "fit"], ["tfidf", "update"],
                                     ["tfidf", "transform"], ["tfidf", "keywords"]])
def test_every_tfidf_command_has_help_with_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Example:" in result.output


@settings(max_examples=150, deadline=None)
@given(docs=st.lists(st.text(alphabet=st.sampled_from(_SEGMENT_CHARS + ["\x1f"]), max_size=40),
                     min_size=1, max_size=6),
       ngrams=st.sampled_from([(1, 1), (1, 2), (2, 2)]), lowercase=st.booleans(),
       stop=st.sampled_from([None, ("的", "是", "a"), "english"]))
def test_jieba_words_in_polars_equal_scikit_learns_analyzer(docs, ngrams, lowercase, stop):
    """jieba's cut (through jieba-rs where installed), then stop words and n-grams in
    polars: the same terms as scikit-learn's analyzer with tokenizer=jieba.lcut, document
    by document (the separator the lists travel with, \x1f, in the text too)."""
    jieba = pytest.importorskip("jieba")
    options = TextOptions(tokenizer="jieba", ngram_range=ngrams, lowercase=lowercase,
                          stop_words=stop)
    assert options.jieba_words
    params = {**options.sklearn_params(), "tokenizer": jieba.lcut}
    analyze = TfidfVectorizer(**params).build_analyzer()
    got = terms(pl.Series(docs), options)
    for i, doc in enumerate(docs):
        mine = sorted(got.filter(pl.col(DOC) == i)[TERM].to_list())
        assert mine == sorted(analyze(doc)), repr(doc)


ALPHABET = st.sampled_from(list("aAbZ éÉ中文字ßİΣς_1²") + [" ", "  ", "\t", "\n", "\r\n",
                                                            "\x1c", "\x85", "\xa0", "\u3000",
                                                            "\u2028", "e\u0301"])


@settings(max_examples=150, deadline=None)
@given(docs=st.lists(st.lists(ALPHABET, max_size=12).map("".join), min_size=1, max_size=6),
       ngrams=st.sampled_from([(1, 1), (1, 2), (2, 2), (1, 3), (2, 4), (3, 3), (3, 5), (5, 5)]),
       lowercase=st.booleans())
@pytest.mark.parametrize("analyzer", ["char", "char_wb"])
def test_char_ngrams_in_polars_equal_scikit_learns_analyzer(analyzer, docs, ngrams, lowercase):
    """Every whitespace scikit-learn's \\s knows (\\x1c, \\x85, U+3000 ...), case folding
    of special letters, combining marks, words shorter than n (char_wb): the same
    n-grams, document by document."""
    options = TextOptions(analyzer=analyzer, ngram_range=ngrams, lowercase=lowercase)
    assert options.fast
    analyze = TfidfVectorizer(**options.sklearn_params()).build_analyzer()
    got = terms(pl.Series(docs), options)
    for i, doc in enumerate(docs):
        mine = sorted(got.filter(pl.col(DOC) == i)[TERM].to_list())
        assert mine == sorted(analyze(doc)), repr(doc)
