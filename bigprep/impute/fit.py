"""The fit pass: a tree reduction of per-partition summaries into one state.

One task per partition reads only the columns it needs, chunk by chunk, and
returns a ``PartialFit``: row and null counts, the statistics' states, and the
scan summaries of its chunks. Partial fits merge in stream order. Exact medians
may then need narrow extra passes (see ``stats.MedianState``); fills from
neighbouring rows get their seeds from one scan over the summaries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from .. import __version__
from ..dataset import Dataset, Partition, chunk_offsets, iter_chunks
from ..errors import BigprepError
from ..executor import Executor
from ..statefile import load_state, save_state
from . import scan as scanning
from .stats import MeanState, MedianState, ModeState
from .strategies import ColumnPlan
from .values import frame_from_bytes, frame_to_bytes, to_json_value

STATE_FORMAT = "bigprep.impute/1"
STATE_CLASSES = {"mean": MeanState, "median": MedianState, "mode": ModeState}


@dataclass
class FitSpec:
    """What one fit task computes; plain data, so it pickles to workers."""

    columns: list[str]  # columns to read
    templates: dict  # (column, kind) -> empty state to update
    scan_columns: list[str] = field(default_factory=list)
    scan_kinds: list[list[str]] = field(default_factory=list)  # per scan column
    group_by: str | None = None
    order_by: str | None = None
    chunk_rows: int = 262_144


@dataclass
class PartialFit:
    rows: int = 0
    nulls: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)
    summaries: list = field(default_factory=list)

    def merge(self, other: PartialFit) -> PartialFit:
        """Combine with the partial fit of the partitions that follow."""
        states = dict(self.states)
        for key, state in other.states.items():
            states[key] = states[key].merge(state) if key in states else state
        nulls = {c: self.nulls.get(c, 0) + other.nulls.get(c, 0)
                 for c in set(self.nulls) | set(other.nulls)}
        return PartialFit(self.rows + other.rows, nulls, states,
                          self.summaries + other.summaries)


def _spawn(state):
    return state.spawn() if isinstance(state, MedianState) else type(state)()


def fit_partition(job: tuple[Partition, FitSpec]) -> PartialFit:
    """Summarise one partition, chunk by chunk."""
    partition, spec = job
    out = PartialFit(states={k: _spawn(s) for k, s in spec.templates.items()})
    for offset, frame in iter_chunks(partition, spec.columns, spec.chunk_rows):
        out.rows += frame.height
        for name, count in zip(frame.columns, frame.null_count().row(0)):
            out.nulls[name] = out.nulls.get(name, 0) + count
        for (column, _), state in out.states.items():
            state.update(frame[column])
        if spec.scan_columns:
            prepared = scanning.prepare(frame, spec.group_by, spec.order_by)
            summary = scanning.summarize(prepared, spec.scan_columns, spec.scan_kinds,
                                         by_order=bool(spec.order_by))
            if spec.order_by:
                if summary[scanning.BAD_ORDER].any():
                    def where(row, offset=offset):
                        return f"{partition.path}, row {offset - partition.offset + row}"
                    scanning.check_order(prepared, spec.order_by, where)
                summary = summary.drop(scanning.BAD_ORDER)
            out.summaries.append(summary)
    return out


@dataclass
class ImputeState:
    """The fitted state: plans, statistics and the tail carried to later runs."""

    plans: list[ColumnPlan]
    group_by: str | None = None
    order_by: str | None = None
    rows: int = 0
    partitions: int = 0
    nulls: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)  # (column, kind) -> state
    tail: pl.DataFrame | None = None
    updates: int = 0
    seen: list = field(default_factory=list)  # [path, rows] of every partition fitted
    run_nulls: dict = field(default_factory=dict)  # nulls in this run's partitions only

    @property
    def scan_columns(self) -> list[str]:
        return [p.column for p in self.plans if p.scans]

    def fill_value(self, column: str, kind: str, exact: bool = False):
        """The learned statistic (a fraction for integers when ``exact``), or a clear
        error if the column had no values."""
        state = self.states[(column, kind)]
        try:
            return state.exact() if exact else state.value()
        except ValueError:
            if state.count == 0:
                raise BigprepError(
                    f"column {column!r}: every value is null ({self.rows:,} rows), so it has "
                    f"no {kind}. Give it a constant (--column {column}=constant:VALUE) or "
                    "leave it out.") from None
            raise

    # -- saving ----------------------------------------------------------------------
    def to_dict(self, sidecar: dict) -> dict:
        columns = {}
        for plan in self.plans:
            entry = {"dtype": str(plan.dtype), "strategy": ",".join(map(str, plan.steps)),
                     "chosen_by": plan.source, "rows": self.rows,
                     "nulls": self.nulls.get(plan.column, 0)}
            if plan.constant is not None:
                entry["constant"] = to_json_value(plan.constant)
            for kind in plan.stats:
                key = f"{plan.column}:{kind}"
                entry[kind] = self.states[(plan.column, kind)].to_dict(sidecar, key)
            columns[plan.column] = entry
        if self.tail is not None:
            sidecar["__tail__"] = frame_to_bytes(self.tail)
        return {"format": STATE_FORMAT, "bigprep_version": __version__,
                "saved": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "rows": self.rows, "partitions": self.partitions, "updates": self.updates,
                "group_by": self.group_by, "order_by": self.order_by, "columns": columns,
                "partitions_seen": self.seen}

    def save(self, path: str, options: dict | None = None) -> None:
        """Write ``path`` (JSON a person can read) and ``path.npz`` (large arrays)."""
        sidecar: dict = {}
        save_state(path, self.to_dict(sidecar), sidecar, options)

    @classmethod
    def load(cls, path: str, schema: dict, options: dict | None = None) -> ImputeState:
        """Read a saved state and check it against the data's schema."""
        data, sidecar = load_state(path, STATE_FORMAT, "impute",
                                   "Run without --update to fit a new one.", options)
        try:
            return cls._from_saved(path, data, sidecar, schema)
        except (KeyError, TypeError, ValueError) as exc:
            raise BigprepError(f"--state {path}: the saved state is incomplete or was edited "
                               f"({type(exc).__name__}: {exc}). Run without --update to fit "
                               "a new one.") from None

    @classmethod
    def _from_saved(cls, path: str, data: dict, sidecar: dict, schema: dict) -> ImputeState:
        from .strategies import _plan, parse_chain

        plans, states = [], {}
        for column, entry in data["columns"].items():
            if column not in schema:
                raise BigprepError(f"--state {path}: column {column!r} of the saved state is "
                                   "not in the new data.")
            if str(schema[column]) != entry["dtype"]:
                raise BigprepError(
                    f"--state {path}: column {column!r} was {entry['dtype']} when the state "
                    f"was fitted and is {schema[column]} in the new data.")
            plan = _plan(column, schema[column], parse_chain(entry["strategy"], "--state"),
                         entry["chosen_by"])
            plans.append(plan)
            for kind in plan.stats:
                key = f"{column}:{kind}"
                states[(column, kind)] = STATE_CLASSES[kind].from_dict(
                    entry[kind], sidecar, key, schema[column])
        tail = frame_from_bytes(sidecar["__tail__"]) if "__tail__" in sidecar else None
        nulls = {c: e["nulls"] for c, e in data["columns"].items()}
        return cls(plans, data["group_by"], data["order_by"], data["rows"], data["partitions"],
                   nulls, states, tail, data.get("updates", 0), data.get("partitions_seen", []))


def fit(dataset: Dataset, plans: list[ColumnPlan], executor: Executor, *,
        group_by: str | None = None, order_by: str | None = None,
        chunk_rows: int = 262_144, prior: ImputeState | None = None):
    """Fit ``plans`` over ``dataset`` (merged into ``prior`` when given).

    Returns ``(state, seeds)``; ``seeds`` maps a chunk's global offset to the
    frame of values it carries in from its neighbours (empty without scans).
    """
    templates = {}
    for plan in plans:
        for kind in plan.stats:
            old = prior.states.get((plan.column, kind)) if prior else None
            if kind == "median" and old is not None and old.count:
                templates[(plan.column, kind)] = old.for_update()
            elif kind == "median" and plan.column in dataset.bounds:
                low, high = dataset.bounds[plan.column]
                templates[(plan.column, kind)] = MedianState.within(
                    low, high, "f" if plan.dtype.is_float() else
                    "u" if plan.dtype.is_unsigned_integer() else "i")
            else:
                templates[(plan.column, kind)] = STATE_CLASSES[kind]()
    scan_columns = [p.column for p in plans if p.scans]
    extra = [c for c in (group_by, order_by) if c and scan_columns]
    read = list(dict.fromkeys(extra + [p.column for p in plans]))  # nulls of every column
    scan_kinds = [p.scans for p in plans if p.scans]
    spec = FitSpec(read, templates, scan_columns, scan_kinds, group_by, order_by, chunk_rows)
    parts = dataset.partitions
    merged = executor.tree_reduce(fit_partition, [(p, spec) for p in parts], PartialFit.merge,
                                  label="fit") if read else PartialFit()
    states = merged.states
    states = _finish_medians(dataset, states, executor, chunk_rows, exact_update=prior)
    nulls = dict(merged.nulls)
    run_nulls = dict(merged.nulls)
    if prior is not None:
        for key, old in prior.states.items():
            if key in states and key[1] != "median":
                states[key] = old.merge(states[key])
        for column, count in prior.nulls.items():
            nulls[column] = nulls.get(column, 0) + count
    seen = [[p.path, p.rows] for p in parts]
    if prior is not None:
        repeated = [path for path, rows in seen if [path, rows] in prior.seen]
        if repeated:
            raise BigprepError(
                f"--update: {repeated[0]} ({len(repeated)} file(s) in all) was already merged "
                "into this state; merging it again would count its rows twice. Give only new "
                "partitions, or run without --update to re-fit.")
        seen = prior.seen + seen
    state = ImputeState(plans, group_by, order_by, merged.rows + (prior.rows if prior else 0),
                        len(parts) + (prior.partitions if prior else 0), nulls, states,
                        updates=(prior.updates + 1) if prior else 0, run_nulls=run_nulls,
                        seen=seen)
    seeds = {}
    if scan_columns and merged.summaries:
        offsets = [o for p in parts for o in chunk_offsets(p, chunk_rows)]
        if len(offsets) != len(merged.summaries):
            raise RuntimeError("chunk boundaries differ between the footer and the reader")
        try:
            seeded, state.tail = scanning.scan(merged.summaries, scan_columns,
                                               by_order=bool(order_by),
                                               prior=prior.tail if prior else None)
        except scanning.OrderError as err:
            offset = offsets[err.chunk]
            part = next(p for p in reversed(parts) if p.offset <= offset)
            raise BigprepError(
                f"{part.path}, row {offset - part.offset + err.row}: --order-by column "
                f"{order_by!r} decreases within its group across the stream (an earlier "
                "row or partition holds a later value). bigprep does not sort: sort the "
                "data, or check the partition order (natural sort of the paths).") from None
        for (chunk,), frame in seeded.partition_by(scanning.CHUNK, as_dict=True).items():
            seeds[offsets[chunk]] = frame
    elif prior is not None:  # no rows now: the tail carries on unchanged
        state.tail = prior.tail
    for plan in plans:  # fail now, before anything is written
        for kind in plan.stats:
            if plan.source == "--column" or state.states[(plan.column, kind)].count:
                state.fill_value(plan.column, kind)
    return state, seeds


def _finish_medians(dataset: Dataset, states: dict, executor: Executor, chunk_rows: int,
                    exact_update) -> dict:
    """Run narrow passes until every median is exact; merge saved windows."""
    states = dict(states)
    pending = {k: s for k, s in states.items() if k[1] == "median"}
    if exact_update is not None:
        saved = {k: s for k, s in exact_update.states.items() if k[1] == "median" and s.count}
        for key, new in pending.items():
            old = saved.get(key)
            if old is None:
                continue
            states[key] = merged = old.merge(new)
            try:
                merged.value()
            except ValueError:
                raise BigprepError(
                    f"column {key[0]!r}: the new partitions move the median outside the "
                    "window of values kept in the saved state, so it cannot be updated "
                    "exactly. Run again without --update to re-fit on all partitions.") from None
        pending = {k: s for k, s in pending.items() if k not in saved}
    while pending:
        nxt = {}
        for key, state in pending.items():
            if state.count == 0:
                continue
            follow = state.next_pass()
            if follow is not None and follow.done:
                states[key] = follow
            elif follow is not None:
                nxt[key] = follow
        if not nxt:
            break
        spec = FitSpec(list(dict.fromkeys(k[0] for k in nxt)), nxt, chunk_rows=chunk_rows)
        merged = executor.tree_reduce(fit_partition, [(p, spec) for p in dataset.partitions],
                                      PartialFit.merge, label="median")
        for key in nxt:
            states[key] = merged.states[key]
        pending = {k: states[k] for k in nxt}
    return states

