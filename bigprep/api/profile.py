"""``bigprep.profile``: the nulls of a dataset, per column and per partition."""

from __future__ import annotations

from ..engine.executor import Executor
from ..io.dataset import DEFAULT_CHUNK_ROWS, open_dataset
from ..ops.base import fit as fit_operation
from ..ops.profile import Profile


def profile(inputs, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, executor: Executor | None = None,
            storage_options: dict | None = None) -> dict:
    """Profile the nulls of ``inputs`` out of core; returns a JSON-ready dict.

    >>> import bigprep, polars as pl, tempfile
    >>> d = tempfile.mkdtemp()
    >>> pl.DataFrame({"x": [1.0, None]}).write_parquet(f"{d}/a.parquet")
    >>> pl.DataFrame({"x": [None, 4.0]}).write_parquet(f"{d}/b.parquet")
    >>> bigprep.profile(d)["columns"]["x"]["longest_null_run"]
    2
    """
    op = Profile({"chunk_rows": chunk_rows})
    return fit_operation(op, open_dataset(inputs, storage_options), executor or Executor())
