"""The imputer's fit: plan the columns, reduce their statistics, finish the state.

The reduction is one ``Fields`` state per partition: the nulls of every planned
column, one statistic per (column, strategy) and the fill summaries of the
columns filled from neighbours; the engine folds chunks into it, merges the
partitions in stream order and runs any extra passes an exact median asks for.
Finishing merges a saved state in (an update) and scans the fill summaries into
the seeds each chunk needs when it is applied, and the tail a later run carries in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl

from ...errors import BigprepError
from ...io.dataset import Dataset
from ...io.statefile import now
from ...io.values import frame_from_bytes, frame_to_bytes, to_json_value
from ...state.composite import Fields, Member
from ...state.protocol import STATISTICS, decode
from ...state.runs import NullCounts
from . import scan as scanning
from .strategies import ColumnPlan, _plan, parse_chain, plan_columns

NULLS, FILLS = "nulls", "fills"


def stat_key(column: str, kind: str) -> str:
    return f"{column}:{kind}"


@dataclass
class ImputeState:
    """The fitted state: plans, statistics and the tail carried to later runs.

    ``seeds`` and ``run_nulls`` belong to the run that made it (the values each
    chunk carries in from its neighbours, and the nulls of that run's data); they
    are not saved.
    """

    plans: list[ColumnPlan]
    group_by: str | None = None
    order_by: str | None = None
    rows: int = 0
    partitions: int = 0
    nulls: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)  # "column:kind" -> statistic state
    tail: pl.DataFrame | None = None
    updates: int = 0
    seen: list = field(default_factory=list)  # [path, rows] of every partition fitted
    created: str = field(default_factory=now)
    seeds: dict = field(default_factory=dict, repr=False)
    run_nulls: dict = field(default_factory=dict, repr=False)
    skipped: dict = field(default_factory=dict, repr=False)  # column -> why left alone
    path: str = field(default="the saved state", repr=False)  # where it was loaded from

    @property
    def scan_columns(self) -> list[str]:
        return [p.column for p in self.plans if p.scans]

    def statistic(self, column: str, kind: str):
        return self.states[stat_key(column, kind)]

    def fill_value(self, column: str, kind: str, exact: bool = False):
        """The learned statistic (a fraction for integers when ``exact``). If the column
        had no values: None when its chain has a constant (which then fills what the
        statistic cannot), else a clear error."""
        state = self.statistic(column, kind)
        value = state.exact() if exact else state.result()
        if value is None and next(p for p in self.plans if p.column == column).constant \
                is not None:
            return None
        if value is None:
            raise BigprepError(
                f"column {column!r}: every value is null ({self.rows:,} rows), so it has "
                f"no {kind}. Give it a constant (`columns` {column}=constant:VALUE) or "
                "leave it out.")
        if isinstance(value, float) and not math.isfinite(value):  # never a NaN or inf fill
            raise BigprepError(
                f"column {column!r}: its {kind} is {value} because the column holds "
                "infinite values (+inf or -inf), as scikit-learn refuses too. Replace them "
                f"with nulls first, or fill the column otherwise (`columns` {column}=...).")
        return value

    def statistics(self) -> dict:
        """The learned values: {column: {strategy: value}} (None for no values)."""
        out: dict = {}
        for plan in self.plans:
            entry = {kind: self.statistic(plan.column, kind).result() for kind in plan.stats}
            if plan.constant is not None:
                entry["constant"] = plan.constant
            out[plan.column] = entry
        return out

    # -- the saved payload -----------------------------------------------------------
    def to_payload(self, sidecar: dict) -> dict:
        columns = {}
        for plan in self.plans:
            entry = {"dtype": str(plan.dtype), "strategy": ",".join(map(str, plan.steps)),
                     "chosen_by": plan.source, "rows": self.rows,
                     "nulls": self.nulls.get(plan.column, 0)}
            if plan.constant is not None:
                entry["constant"] = to_json_value(plan.constant)
            for kind in plan.stats:
                key = stat_key(plan.column, kind)
                entry[kind] = self.states[key].to_payload(sidecar, key)
            columns[plan.column] = entry
        if self.tail is not None:
            sidecar["__tail__"] = frame_to_bytes(self.tail)
        # the exact column types, so a state loaded without data still types its values
        sidecar["__schema__"] = frame_to_bytes(pl.DataFrame(
            schema={p.column: p.dtype for p in self.plans}))
        return {"rows": self.rows, "partitions": self.partitions, "group_by": self.group_by,
                "order_by": self.order_by, "columns": columns}

    @classmethod
    def from_payload(cls, path: str, data: dict, sidecar: dict, schema: dict | None,
                     seen: list, created: str, updates: int) -> ImputeState:
        """Read a saved payload; with ``schema``, check it against the data's."""
        plans, states = [], {}
        saved = frame_from_bytes(sidecar["__schema__"]).schema
        for column, entry in data["columns"].items():
            dtype = _saved_dtype(path, column, saved[column], schema)
            plan = _plan(column, dtype, parse_chain(entry["strategy"], "`state`"),
                         entry["chosen_by"])
            plans.append(plan)
            for kind in plan.stats:
                key = stat_key(column, kind)
                states[key] = decode(STATISTICS[kind].cls.KIND, entry[kind], sidecar, key)
        tail = frame_from_bytes(sidecar["__tail__"]) if "__tail__" in sidecar else None
        nulls = {c: e["nulls"] for c, e in data["columns"].items()}
        return cls(plans, data["group_by"], data["order_by"], data["rows"], data["partitions"],
                   nulls, states, tail, updates, seen, created)


def _saved_dtype(path: str, column: str, saved, schema: dict | None):
    if schema is None:
        return saved
    if column not in schema:
        raise BigprepError(f"`state` {path}: column {column!r} of the saved state is not in "
                           "the new data. Give data with the columns it was fitted on.")
    if schema[column] != saved:
        raise BigprepError(f"`state` {path}: column {column!r} was {saved} when the state "
                           f"was fitted and is {schema[column]} in the new data.")
    return schema[column]


# --- plan, reduction, finish ----------------------------------------------------------

@dataclass
class ImputePlan:
    plans: list[ColumnPlan]
    skipped: dict


def plan(params, dataset: Dataset, prior: ImputeState | None) -> ImputePlan:
    schema = dataset.polars_schema
    taken = [c for c in schema if c.startswith(scanning.PREFIX)]
    if taken:  # the scans add working columns by these names to every chunk
        raise BigprepError(
            f"column {taken[0]!r}: names starting with {scanning.PREFIX!r} are reserved for "
            "bigprep's working columns. Rename the column first (polars: "
            f"df.rename({{{taken[0]!r}: 'new_name'}})).")
    for name, param in ((params.group_by, "group_by"), (params.order_by, "order_by")):
        if name:
            dataset.require(name, param)
    order = params.order_by
    if order and not (schema[order].is_numeric() or schema[order].is_temporal()):
        raise BigprepError(f"`order_by` {order}: the column is {schema[order]}; it must "
                           "hold numbers, dates or timestamps.")
    if prior is not None:
        for p in prior.plans:
            _saved_dtype(prior.path, p.column, p.dtype, schema)
        for name, param, saved in ((params.group_by, "group_by", prior.group_by),
                                   (params.order_by, "order_by", prior.order_by)):
            if (name or None) != saved:
                fitted = f"with `{param}` {saved}" if saved else f"without `{param}`"
                raise BigprepError(f"`{param}` {name}: the saved state was fitted {fitted}. "
                                   "Use the same parameters.")
        return ImputePlan(prior.plans, {})
    exclude = tuple(c for c in (params.group_by, params.order_by) if c)
    plans, skipped = plan_columns(schema, dataset.null_counts, strategy=params.strategy,
                                  columns=dict(params.columns or {}), exclude=exclude,
                                  include_clean=params.keep_clean)
    return ImputePlan(plans, skipped)


def reduction(params, planned: ImputePlan, dataset: Dataset, prior: ImputeState | None,
              learn: bool) -> Fields | None:
    """The fit pass's state; applying a saved state without fills from neighbours
    and without an ``order_by`` to check reads nothing (None)."""
    scans = [p for p in planned.plans if p.scans]
    ordered = bool(scans or params.order_by)  # an order_by is checked even without scans
    if not learn and not ordered:
        return None
    members = {NULLS: Member(NullCounts())}
    for p in planned.plans if learn else ():
        for kind in p.stats:
            key = stat_key(p.column, kind)
            old = prior.states.get(key) if prior is not None else None
            state = old.continuation() if old is not None else STATISTICS[kind].cls.for_column(
                p.dtype, dataset.bounds.get(p.column))
            members[key] = Member(state, p.column)
    if ordered:
        members[FILLS] = Member(scanning.FillSummaries(
            [p.column for p in scans], [p.scans for p in scans], params.group_by,
            params.order_by))
    extra = [c for c in (params.group_by, params.order_by) if c and ordered]
    return Fields(members, tuple(dict.fromkeys(extra + [p.column for p in planned.plans])))


def finish(params, planned: ImputePlan, reduced: Fields | None, dataset: Dataset,
           prior: ImputeState | None, learn: bool) -> ImputeState:
    if reduced is None:  # applying statistics only: the footers' null counts, where known
        reduced = Fields({NULLS: Member(NullCounts(dataset.rows, {
            c: n for c, n in dataset.null_counts.items() if n is not None}))})
    counted = reduced[NULLS]
    states = {}
    for p in planned.plans:
        for kind in p.stats:
            key = stat_key(p.column, kind)
            old = prior.states.get(key) if prior is not None else None
            states[key] = _merged(p.column, old, reduced[key]).compact() if learn else old
    nulls = dict(counted.nulls)
    if prior is not None and learn:
        for column, count in prior.nulls.items():
            nulls[column] = nulls.get(column, 0) + count
    base = prior if prior is not None else ImputeState(planned.plans)
    seen = [[p.path, p.rows] for p in dataset.partitions]
    state = ImputeState(planned.plans, params.group_by, params.order_by, base.rows,
                        base.partitions, base.nulls, states, base.tail, base.updates, base.seen,
                        base.created, path=base.path)
    if learn:
        state.rows += counted.rows
        state.partitions += len(dataset.partitions)
        state.nulls, state.seen = nulls, base.seen + seen
        state.updates += prior is not None
    # no rows, no nulls (a column no chunk reported is otherwise assumed to hold some)
    state.run_nulls = (dict(counted.nulls) if counted.rows
                       else {p.column: 0 for p in planned.plans})
    if FILLS in reduced:
        carried = _carried_tail(prior, dataset, learn)
        try:
            state.seeds, tail = reduced[FILLS].scan(carried)
        except scanning.OrderError as err:
            part = next(p for p in reversed(dataset.partitions) if p.offset <= err.chunk)
            earlier = " or the saved state's last rows" if carried is not None else ""
            raise BigprepError(
                f"{part.path}, row {err.chunk - part.offset + err.row}: `order_by` column "
                f"{params.order_by!r} decreases within its group across the stream (an "
                f"earlier row or partition{earlier} holds a later value). bigprep does not "
                "sort: sort the data, or check the partition order (natural sort of the "
                "paths). A partition that belongs before data already done can only come "
                "in with a fit over everything (a pipeline's `full`).", part.path) from None
        if learn:
            state.tail = tail
    for p in planned.plans:  # fail now, before anything is written
        for kind in p.stats:
            if p.source == "columns" or state.statistic(p.column, kind).result() is not None:
                state.fill_value(p.column, kind)
    return state


def _carried_tail(prior: ImputeState | None, dataset: Dataset, learn: bool):
    """The saved last values to carry into this run's first rows: only into data that
    comes after what the state has seen. Applying a state to partitions it was fitted
    on fills them from their own neighbours, as the fit did."""
    if prior is None or prior.tail is None:
        return None
    known = {(path, rows) for path, rows in prior.seen}
    if not learn and any((p.path, p.rows) in known for p in dataset.partitions):
        return None
    return prior.tail


def _merged(column: str, old, new):
    if old is None:
        return new
    merged = old.merge(new)
    if getattr(merged, "complete", True) is False:
        raise BigprepError(
            f"column {column!r}: the new partitions move the median outside the window of "
            "values kept in the saved state, so it cannot be updated exactly. Fit again on "
            "all partitions.")
    return merged
