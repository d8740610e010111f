"""``impute()``: open, plan, fit, apply -- the whole job behind ``bigprep impute``."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import polars as pl

from ..dataset import DEFAULT_CHUNK_ROWS, Dataset, chunk_offsets, open_dataset
from ..errors import BigprepError
from ..executor import Executor
from ..sink import check_out_dir, check_state_path, write_each
from ..storage import exists
from .apply import ApplySpec, apply_partition, output_schema
from .fit import ImputeState, fit
from .strategies import ColumnPlan, plan_columns


@dataclass
class ImputeReport:
    """What a run did: the state, per-file results and the columns left alone."""

    state: ImputeState
    files: list[dict]
    skipped: dict = field(default_factory=dict)
    defaulted: bool = False
    applied: list = field(default_factory=list)  # the plans that had work to do
    nulls: dict = field(default_factory=dict)  # nulls per column in this run's inputs
    fills: dict = field(default_factory=dict)  # (column, kind) -> the value written

    def filled(self, column: str) -> int:
        return self.nulls.get(column, 0) - self.left(column)

    def left(self, column: str) -> int:
        return sum(f["left"][column] for f in self.files)


def polars_schema(dataset: Dataset) -> dict:
    return dict(pl.Schema(dataset.schema))


def typed_fill(value, plan: ColumnPlan):
    """A statistic typed for its column: integers round half to even, exactly.

    >>> from fractions import Fraction
    >>> typed_fill(Fraction(5, 2), ColumnPlan("x", pl.Int64, (), "default"))
    2
    """
    if plan.dtype.is_integer() and isinstance(value, (float, Fraction)):
        return round(value)
    return value


def impute(inputs, out: str | None, *, strategy: str | None = None,
           columns: dict[str, str] | None = None, group_by: str | None = None,
           order_by: str | None = None, add_indicator: bool = False,
           state_path: str | None = None, update: bool = False,
           chunk_rows: int = DEFAULT_CHUNK_ROWS, compression: str = "zstd",
           executor: Executor | None = None, storage_options: dict | None = None,
           ) -> ImputeReport:
    """Impute the nulls of Parquet partitions out of core.

    ``inputs`` are files, folders or globs; output goes to ``out`` with the same
    relative paths (``out=None`` fits and saves the state only); any of them
    may be fsspec URLs (``storage_options`` for their filesystem). With
    ``state_path`` the fitted state is saved there; with ``update=True`` the
    saved state is loaded first and the new partitions are merged into it.
    """
    executor = executor or Executor()
    columns = dict(columns or {})
    dataset = open_dataset(inputs, storage_options)
    schema = polars_schema(dataset)
    for name, option in ((group_by, "--group-by"), (order_by, "--order-by")):
        if name:
            dataset.require(name, option)
    if order_by and not (schema[order_by].is_numeric() or schema[order_by].is_temporal()):
        raise BigprepError(f"--order-by {order_by}: the column is {schema[order_by]}; it must "
                           "hold numbers, dates or timestamps.")
    if out is not None:
        check_out_dir(out, [p.path for p in dataset.partitions], dataset.root)
    if state_path:
        check_state_path(state_path, [p.path for p in dataset.partitions])
    prior = None
    if update:
        if not state_path or not exists(state_path, storage_options or {}):
            raise BigprepError(f"--update needs a saved state: {state_path or '--state FILE'} "
                               "does not exist. Run once without --update to create it.")
        prior = ImputeState.load(state_path, schema, storage_options)
        if strategy or columns:
            raise BigprepError("--update takes the strategies from the saved state; leave "
                               "--strategy and --column out (or re-fit without --update).")
        for name, option, saved in ((group_by, "--group-by", prior.group_by),
                                    (order_by, "--order-by", prior.order_by)):
            if (name or None) != saved:
                raise BigprepError(f"--update: the saved state was fitted with {option} "
                                   f"{saved}, not {name}. Use the same options.")
        plans, skipped = prior.plans, {}
    else:
        exclude = tuple(c for c in (group_by, order_by) if c)
        plans, skipped = plan_columns(schema, dataset.null_counts, strategy=strategy,
                                      columns=columns, exclude=exclude,
                                      include_clean=bool(state_path))
    state, seeds = fit(dataset, plans, executor, group_by=group_by, order_by=order_by,
                       chunk_rows=chunk_rows, prior=prior)
    # A column that --strategy or the default chose but that holds no null needs no work.
    # An all-null column has no statistic: sklearn drops it; we leave it as it is and say so.
    active = []
    for plan in plans:
        if plan.source != "--column" and not state.run_nulls.get(plan.column, 1):
            skipped[plan.column] = "no nulls"
        elif plan.source != "--column" and any(
                not state.states[(plan.column, k)].count for k in plan.stats):
            skipped[plan.column] = (f"every value is null, so it has no {plan.stats[0]}; "
                                    f"use --column {plan.column}=constant:VALUE")
        else:
            active.append(plan)
    files: list[dict] = []
    fills = {(p.column, k): typed_fill(state.fill_value(p.column, k, exact=True), p)
             for p in active for k in p.stats}
    if out is not None:
        spec = ApplySpec(active, fills, group_by, order_by, add_indicator,
                         output_schema(pl.Schema(dataset.schema), active, add_indicator), chunk_rows,
                         compression, tuple(state.scan_columns))
        def job_for(part, final):  # each task gets the seeds of its own chunks only
            return part, spec, {o: seeds[o] for o in chunk_offsets(part, chunk_rows)
                                if o in seeds}, final

        files = write_each(dataset.partitions, out, apply_partition, job_for,
                           executor=executor, label="impute", command="bigprep impute",
                           options=storage_options)
    if state_path:
        state.save(state_path, storage_options)
    defaulted = not strategy and not columns and not update
    return ImputeReport(state, files, skipped, defaulted, active, state.run_nulls, fills)
