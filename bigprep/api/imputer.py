"""``bigprep.Imputer``: fill missing values of Parquet partitions, out of core."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

from ..engine.passes import write_each
from ..io.dataset import DEFAULT_CHUNK_ROWS
from ..io.lock import locked
from ..ops.base import fit as fit_operation
from ..ops.impute.fit import ImputeState
from ..ops.impute.operation import Impute
from .base import Estimator


@dataclass
class ImputeReport:
    """What a run wrote: per-file rows and nulls left, and the columns left alone."""

    state: ImputeState
    files: list[dict]
    applied: list = field(default_factory=list)  # the column plans that had work to do
    skipped: dict = field(default_factory=dict)  # column -> why it was left alone
    fills: dict = field(default_factory=dict)  # "column:kind" -> the value written
    nulls: dict = field(default_factory=dict)  # nulls per column in this run's inputs

    def filled(self, column: str) -> int | None:
        """Nulls filled in ``column`` (None when the inputs' nulls were not counted)."""
        if column not in self.nulls:
            return None
        return self.nulls[column] - self.left(column)

    def left(self, column: str) -> int:
        return sum(f["left"][column] for f in self.files)


class Imputer(Estimator):
    """Fill the nulls of Parquet partitions out of core, as scikit-learn's SimpleImputer
    does in memory (mean, median and mode equal it exactly), plus fills from neighbouring
    rows across files: ffill, bfill and interpolate, per group and in order.

    Parameters
    ----------
    strategy : str, optional
        Strategy (or comma chain) for every column with nulls it can serve:
        ``constant:VALUE``, ``mean``, ``median``, ``mode``, ``ffill``, ``bfill``,
        ``interpolate``. Default: mean for numeric columns, mode for the others.
    columns : dict, optional
        Strategy chain per column, e.g. ``{"temp": "interpolate,ffill"}``; chains fill
        what is still null, in order. With ``strategy`` unset only these are imputed.
    group_by, order_by : str, optional
        Fills from neighbours stay within groups of ``group_by``; rows are in the order
        of ``order_by`` (checked, not sorted), whose values ``interpolate`` uses.
    add_indicator : bool
        Add a boolean ``COLUMN__missing`` per imputed column.
    keep_clean : bool
        Also learn the statistics of columns without nulls, for later data that has some.
    chunk_rows : int
        Rows per chunk; memory grows with it.
    compression : str or None
        Parquet compression of the output files.
    executor : bigprep.Executor, optional
        Where to run (default: threads on this machine).
    storage_options : dict, optional
        fsspec options for ``s3://`` and other URLs.

    Attributes
    ----------
    statistics_ : dict
        The learned values, ``{column: {strategy: value}}``.
    state_ : ImputeState
        The whole fitted state (what ``save`` writes).

    Examples
    --------
    >>> import bigprep, polars as pl, tempfile
    >>> d = tempfile.mkdtemp()
    >>> pl.DataFrame({"x": [1.0, None, 3.0]}).write_parquet(f"{d}/a.parquet")
    >>> pl.DataFrame({"x": [None, 10.0]}).write_parquet(f"{d}/b.parquet")
    >>> imp = bigprep.Imputer(strategy="median").fit(f"{d}/a.parquet")
    >>> imp.statistics_
    {'x': {'median': 2.0}}
    >>> report = imp.transform(f"{d}/b.parquet", out=f"{d}/out")   # applies, learns nothing
    >>> pl.read_parquet(f"{d}/out/b.parquet")["x"].to_list()
    [2.0, 10.0]
    >>> imp.partial_fit(f"{d}/b.parquet").statistics_              # now learns b too
    {'x': {'median': 3.0}}
    """

    operation = Impute

    def __init__(self, *, strategy: str | None = None, columns: dict | None = None,
                 group_by: str | None = None, order_by: str | None = None,
                 add_indicator: bool = False, keep_clean: bool = False,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS, compression: str | None = "zstd",
                 executor=None, storage_options: dict | None = None):
        self.strategy = strategy
        self.columns = columns
        self.group_by = group_by
        self.order_by = order_by
        self.add_indicator = add_indicator
        self.keep_clean = keep_clean
        self.chunk_rows = chunk_rows
        self.compression = compression
        self.executor = executor
        self.storage_options = storage_options

    @property
    def statistics_(self) -> dict:
        self._check_fitted()
        return self.state_.statistics()

    def _op(self) -> Impute:
        return Impute(self._saved_params())

    def _fit(self, dataset, prior, learn: bool) -> ImputeState:
        return fit_operation(self._op(), dataset, self._executor(), prior=prior, learn=learn)

    # -- learning ----------------------------------------------------------------------
    def fit(self, inputs, *, save: str | None = None) -> Imputer:
        """Learn the statistics of ``inputs`` (files, folders, globs, URLs or a list);
        with ``save=PATH`` also write the state there (checked before any data is read)."""
        self._learn(inputs, None, save=save)
        return self

    def partial_fit(self, inputs, *, save: str | None = None) -> Imputer:
        """Merge new partitions into the fitted statistics (old ones are not read
        again); the same as ``fit`` on an imputer not fitted yet."""
        self._learn(inputs, getattr(self, "state_", None), save=save)
        return self

    # -- applying ----------------------------------------------------------------------
    def transform(self, inputs, *, out: str, overwrite: bool = False) -> ImputeReport:
        """Fill ``inputs`` with the fitted statistics, learning nothing, into ``out``
        (one file per input at the same relative path). Fills from neighbours carry
        in the last values of the fitted data. ``out`` must be empty or absent, or
        ``overwrite=True`` replaces it whole."""
        self._check_fitted()
        dataset = self._open(inputs, out=out)
        commit = self._commit(dataset, out, overwrite, add=False)
        return self._write(dataset, self._fit(dataset, self.state_, False), commit)

    def fit_transform(self, inputs, *, out: str | None, save: str | None = None,
                      overwrite: bool = False) -> ImputeReport:
        """``fit`` then ``transform`` of the same inputs, reading them once to learn
        (``out=None``: write no data, only learn, and ``save``)."""
        return self._learn(inputs, None, out=out, save=save, write=True,
                           overwrite=overwrite)

    def partial_fit_transform(self, inputs, *, out: str | None, save: str | None = None
                              ) -> ImputeReport:
        """``partial_fit`` then ``transform`` of the same new partitions (one pass to
        learn): what ``bigprep impute --update`` does. Their outputs are added to
        ``out``, beside the earlier ones its manifest lists."""
        return self._learn(inputs, getattr(self, "state_", None), out=out, save=save,
                           write=True, add=True)

    def _learn(self, inputs, prior, *, out: str | None = None, save: str | None = None,
               write: bool = False, overwrite: bool = False, add: bool = False
               ) -> ImputeReport | None:
        """Fit (merged into ``prior`` when given), write ``out`` if asked, save; the state
        file stays locked from the first read to the save. The outputs are published
        before the state is saved: a run killed between the two is simply run again."""
        with locked(save):
            dataset = self._open(inputs, out=out, state=save)
            commit = None if out is None else self._commit(dataset, out, overwrite, add)
            with commit.holding() if commit is not None else nullcontext():
                self.state_ = self._fit(dataset, prior, True)
                report = self._write(dataset, self.state_, commit) if write else None
                self._saved(save)
        return report

    def _commit(self, dataset, out: str, overwrite: bool, add: bool):
        return self._output(dataset, out, "bigprep impute", self._saved_params(),
                            overwrite=overwrite, add=add)

    def _write(self, dataset, fitted: ImputeState, commit) -> ImputeReport:
        transform = self._op().transformer(fitted, dataset)
        files = [] if commit is None else write_each(
            dataset, commit, transform, self._executor(), chunk_rows=self.chunk_rows,
            label="impute", compression=self.compression)
        return ImputeReport(fitted, files, transform.plans, dict(fitted.skipped),
                            transform.fills, dict(fitted.run_nulls))

    # -- saving ------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write the fitted state: ``path`` (readable JSON) and ``path.npz`` (arrays)."""
        self._check_fitted()
        self._save_state(path, self.state_, self._saved_params())

    @classmethod
    def load(cls, path: str, *, executor=None, storage_options: dict | None = None) -> Imputer:
        """An imputer with a saved state, ready to ``transform`` or ``partial_fit``."""
        envelope = cls._load_envelope(path, storage_options)
        params = cls._saved_parameters(path, Impute.Params, envelope.parameters)
        imp = cls(**params.model_dump(), executor=executor, storage_options=storage_options)
        imp.state_ = cls._decoded(path, ImputeState.from_payload, path, envelope.payload,
                                  envelope.sidecar, None, envelope.partitions_seen,
                                  envelope.created, envelope.updates)
        imp.state_.path = path
        return imp
