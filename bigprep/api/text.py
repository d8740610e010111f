"""``bigprep.TfidfVectorizer``: incremental TF-IDF over a text column, out of core."""

from __future__ import annotations

from ..engine.passes import write_each
from ..errors import BigprepError
from ..io.dataset import DEFAULT_CHUNK_ROWS
from ..io.lock import locked
from ..ops.base import fit as fit_operation
from ..ops.base import validate
from ..ops.tfidf.analyze import DEFAULT_PATTERN
from ..ops.tfidf.operation import Tfidf
from ..ops.tfidf.vocabulary import ID, TERM, TfidfState
from .base import Estimator

# parameters that act when vectors are made, from the counts: changeable after fitting
APPLY_TIME = ("norm", "use_idf", "smooth_idf", "sublinear_tf", "chunk_rows")


class TfidfVectorizer(Estimator):
    """scikit-learn's TfidfVectorizer over Parquet partitions, with the same parameters
    and the same vectors (``vocabulary_`` and ``idf_`` equal scikit-learn's on the same
    documents), plus ``partial_fit``: new partitions update the counts, ids stay stable.

    Parameters are scikit-learn's (``analyzer``, ``ngram_range``, ``lowercase``,
    ``token_pattern``, ``stop_words``, ``strip_accents``, ``min_df``, ``max_df``,
    ``max_features``, ``norm``, ``use_idf``, ``smooth_idf``, ``sublinear_tf``), and:

    tokenizer : "jieba" or None
        Chinese word segmentation (``pip install 'bigprep[zh]'``).
    hash_features : int, optional
        No vocabulary: hash terms into this many columns, as HashingVectorizer.
    chunk_rows, compression, executor, storage_options
        As for ``bigprep.Imputer``.

    Attributes
    ----------
    vocabulary_ : dict
        Term -> column id. ``idf_`` : the idf by column id. ``documents_`` : documents seen.

    Examples
    --------
    >>> import bigprep, polars as pl, tempfile
    >>> d = tempfile.mkdtemp()
    >>> pl.DataFrame({"text": ["red apple", "green apple"]}).write_parquet(f"{d}/a.parquet")
    >>> pl.DataFrame({"text": ["red pear"]}).write_parquet(f"{d}/b.parquet")
    >>> tf = bigprep.TfidfVectorizer().fit(f"{d}/a.parquet", text_column="text")
    >>> tf.vocabulary_
    {'apple': 0, 'green': 1, 'red': 2}
    >>> tf.partial_fit(f"{d}/b.parquet").vocabulary_    # new terms are appended
    {'apple': 0, 'green': 1, 'red': 2, 'pear': 3}
    >>> files = tf.transform(f"{d}/b.parquet", out=f"{d}/v", keywords=1)
    >>> pl.read_parquet(f"{d}/v/b.parquet")["keywords"].to_list()
    [['pear']]
    """

    operation = Tfidf
    unsaved = ("compression",)

    def __init__(self, *, analyzer: str = "word", ngram_range: tuple = (1, 1),
                 lowercase: bool = True, token_pattern: str = DEFAULT_PATTERN,
                 stop_words=None, tokenizer: str | None = None,
                 strip_accents: str | None = None, min_df: float = 1,
                 max_df: float = 1.0, max_features: int | None = None,
                 norm: str | None = "l2", use_idf: bool = True, smooth_idf: bool = True,
                 sublinear_tf: bool = False, hash_features: int | None = None,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS, compression: str | None = "zstd",
                 executor=None, storage_options: dict | None = None):
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.lowercase = lowercase
        self.token_pattern = token_pattern
        self.stop_words = stop_words
        self.tokenizer = tokenizer
        self.strip_accents = strip_accents
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.norm = norm
        self.use_idf = use_idf
        self.smooth_idf = smooth_idf
        self.sublinear_tf = sublinear_tf
        self.hash_features = hash_features
        self.chunk_rows = chunk_rows
        self.compression = compression
        self.executor = executor
        self.storage_options = storage_options

    # -- learned attributes ---------------------------------------------------------------
    @property
    def vocabulary_(self) -> dict:
        self._check_fitted()
        if self.state_.vocabulary is None:
            return {}
        return dict(self.state_.vocabulary.select(TERM, ID).iter_rows())

    @property
    def idf_(self):
        self._check_fitted()
        return self.state_.idf()

    @property
    def documents_(self) -> int:
        self._check_fitted()
        return self.state_.documents

    @property
    def text_column_(self) -> str:
        self._check_fitted()
        return self.state_.params.text_column

    # -- learning ----------------------------------------------------------------------
    def _fitted_op(self) -> Tfidf:
        """The fitted parameters, with the ones that act when vectors are made (and
        chunk_rows) taken from this estimator; the others need a new fit."""
        fitted = self.state_.params
        current = validate(Tfidf.Params, {**fitted.model_dump(), **self._saved_params()})
        changed = [k for k in self._saved_params()
                   if k not in APPLY_TIME and getattr(current, k) != getattr(fitted, k)]
        if changed:
            raise BigprepError(f"`{changed[0]}` was changed after fitting; it decides which "
                               "terms are counted, so fit again to change it.")
        return Tfidf(current)

    def _op(self, text_column: str) -> Tfidf:
        return Tfidf({**self._saved_params(), "text_column": text_column})

    def fit(self, inputs, *, text_column: str, save: str | None = None) -> TfidfVectorizer:
        """Count the document frequencies of ``text_column`` over ``inputs``; with
        ``save=PATH`` also write the state there (checked before any data is read)."""
        op = self._op(text_column)
        with locked(save):
            self.state_ = fit_operation(op, self._open(inputs, state=save), self._executor())
            return self._saved(save)

    def partial_fit(self, inputs=None, *, text_column: str | None = None, refit: bool = False,
                    save: str | None = None) -> TfidfVectorizer:
        """Add new partitions' counts (old partitions are not read again). Term ids stay;
        new terms are appended (``refit=True`` renumbers them alphabetically, and may be
        given without ``inputs`` to renumber the saved counts alone)."""
        prior = getattr(self, "state_", None)
        if prior is None:
            if text_column is None:
                raise BigprepError("`text_column`: give the text column to the first fit.")
            return self.fit(inputs, text_column=text_column, save=save)
        if text_column not in (None, prior.params.text_column):
            raise BigprepError(f"`text_column` {text_column}: the state counts column "
                               f"{prior.params.text_column!r}.")
        op = self._fitted_op()
        with locked(save):
            if inputs is None or (not isinstance(inputs, str) and not list(inputs)):
                if not refit:
                    raise BigprepError("`inputs`: give the new partitions to add (only "
                                       "`refit` may run without any, to renumber).")
                self.state_ = prior.updated(op.params, prior.counts, prior.seen, refit=True)
            else:
                self.state_ = fit_operation(op, self._open(inputs, state=save),
                                            self._executor(), prior=prior, refit=refit)
            return self._saved(save)

    # -- applying ----------------------------------------------------------------------
    def transform(self, inputs, *, out: str, keep=(), keywords: int = 0,
                  vectors: bool = True, overwrite: bool = False) -> list[dict]:
        """Write one Parquet file per input: the ``keep`` columns, ``tfidf_indices`` and
        ``tfidf_weights`` (a sparse row; ``vectors=False`` leaves them out) and, with
        ``keywords=K``, the top K terms of each document. Returns the files written.
        ``out`` must be empty or absent, or ``overwrite=True`` replaces it whole."""
        self._check_fitted()
        op = self._fitted_op()
        dataset = self._open(inputs, out=out)
        commit = self._writing(op, dataset, out, keep, keywords, vectors, overwrite)
        return self._write(op, dataset, commit, keep, keywords, vectors)

    def fit_transform(self, inputs, *, text_column: str, out: str, keep=(), keywords: int = 0,
                      vectors: bool = True, overwrite: bool = False,
                      save: str | None = None) -> list[dict]:
        """``fit`` then ``transform`` of the same inputs, listed once; the output folder,
        the kept columns and ``save`` are checked before any data is read."""
        op = self._op(text_column)
        dataset = self._open(inputs, out=out, state=save)
        commit = self._writing(op, dataset, out, keep, keywords, vectors, overwrite)
        with locked(save):
            self.state_ = fit_operation(op, dataset, self._executor())
            self._saved(save)
        return self._write(self._fitted_op(), dataset, commit, keep, keywords, vectors)

    def _writing(self, op, dataset, out, keep, keywords, vectors, overwrite):
        """The output's commit, once ``keywords`` and ``keep`` are known to be right."""
        if isinstance(keywords, bool) or not isinstance(keywords, int) or keywords < 0:
            raise BigprepError(f"`keywords` {keywords!r}: a count of terms, 0 or more.")
        dataset.require_each(list(keep), "keep")  # as the transformer does, before any write
        return self._output(dataset, out, "bigprep tfidf", {
            **op.params.model_dump(), "keep": list(keep), "keywords": keywords,
            "vectors": vectors}, overwrite=overwrite)

    def _write(self, op, dataset, commit, keep, keywords, vectors) -> list[dict]:
        op.plan(dataset, self.state_)
        transform = op.transformer(self.state_, dataset, keep=keep, keywords=keywords,
                                   vectors=vectors)
        return write_each(dataset, commit, transform, self._executor(),
                          chunk_rows=op.params.chunk_rows, label="tf-idf",
                          compression=self.compression)

    # -- saving ------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write the counts and vocabulary: ``path`` (JSON) and ``path.npz``."""
        self._check_fitted()
        self._save_state(path, self.state_, self.state_.params.model_dump())

    @classmethod
    def load(cls, path: str, *, executor=None,
             storage_options: dict | None = None) -> TfidfVectorizer:
        """A vectorizer with a saved state, ready to ``transform`` or ``partial_fit``."""
        envelope = cls._load_envelope(path, storage_options)
        params = cls._saved_parameters(path, Tfidf.Params, envelope.parameters)
        tf = cls(**{k: v for k, v in params.model_dump().items() if k != "text_column"},
                 executor=executor, storage_options=storage_options)
        tf.state_ = cls._decoded(path, TfidfState.from_payload, params, envelope.payload,
                                 envelope.sidecar, envelope.partitions_seen, envelope.created,
                                 envelope.updates)
        return tf
