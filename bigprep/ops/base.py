"""The operation interface and its registry.

An operation declares its parameters and their constraints once, as a pydantic
model (``Params``), validated the same way from the CLI, the Python API and a
pipeline file. Fitting is ``plan`` (check the parameters against the schema, decide
what to compute), ``reduction`` (the empty state folded over every chunk, one
reduction for all operations: ``engine.passes.reduce``) and ``finish`` (the fitted
state). Applying is ``transformer``: a picklable per-chunk transform with its
output schema, written by the one writer (``engine.passes.write_each``).
Training is the one sequential fold and is not an operation (see models/train.py).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ..engine.passes import Stacked, reduce
from ..errors import BigprepError, UsageError
from ..io.dataset import DEFAULT_CHUNK_ROWS, Dataset
from ..io.sink import COMPRESSIONS

OPERATIONS: dict[str, type[Operation]] = {}


class Checked(BaseModel):
    """Declared parameters: types and bounds checked, unknown names refused."""

    # defer_build: a model's validator is built when first used, not at import, so a
    # command pays only for the parameters it checks
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True,
                              defer_build=True)


def _compression(value):
    if value not in COMPRESSIONS:
        raise ValueError(f"use one of {', '.join(map(str, COMPRESSIONS))}")
    return value


Compression = Annotated[str | None, AfterValidator(_compression)]  # a Parquet codec


class Params(Checked):
    """Base of every operation's parameters."""

    chunk_rows: int = Field(DEFAULT_CHUNK_ROWS, ge=1, description="Rows per chunk; memory "
                            "grows with it.")


def register(cls):
    """Class decorator: an operation under its ``name``."""
    OPERATIONS[cls.name] = cls
    return cls


def validate(params_type: type[Checked], values: dict) -> Checked:
    """Validated parameters, or one clear error naming the parameter."""
    try:
        return params_type(**values)
    except ValidationError as exc:
        # an unknown name first: it is the likeliest cause of the other errors (a typo)
        error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a rule over several parameters names them itself
            raise UsageError(f"{message}.") from None
        name = str(error["loc"][0])
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(name, list(params_type.model_fields), 1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise UsageError(f"`{name}`: unknown parameter.{hint} Known: "
                               f"{', '.join(params_type.model_fields)}.") from None
        if error["type"] == "missing":
            raise UsageError(f"`{name}`: required, and not given.") from None
        raise UsageError(f"`{name}` {error.get('input')!r}: {message}.") from None


def check_unseen(seen: list, dataset: Dataset) -> None:
    """Stop before a partition is merged into a state a second time (same path, rows)."""
    known = {(path, rows) for path, rows in seen}
    repeated = [p.path for p in dataset.partitions if (p.path, p.rows) in known]
    if repeated:
        raise BigprepError(
            f"{repeated[0]} ({len(repeated)} file(s) in all) was already merged into this "
            "state; merging it again would count its rows twice. Give only new partitions, "
            "or fit a new state on all of them.", repeated[0])


def seen_of(dataset: Dataset) -> list:
    return [[p.path, p.rows] for p in dataset.partitions]


class Operation:
    """One operation over partitions: its parameters, its reduction, its map."""

    name: ClassVar[str]
    title: ClassVar[str]  # how messages name its state, e.g. "TF-IDF"
    Params: ClassVar[type[Params]]

    def __init__(self, params: Params | dict):
        self.params = params if isinstance(params, self.Params) else validate(
            self.Params, dict(params))

    # -- fit: a reduction ---------------------------------------------------------------
    def plan(self, dataset: Dataset, prior) -> Any:
        """Check the parameters against the data; decide what to compute."""
        raise NotImplementedError

    def reduction(self, plan, dataset: Dataset, prior, learn: bool):
        """The empty state to fold over every chunk (None: nothing to read). Without
        ``learn`` only what applying ``prior`` needs is reduced."""
        raise NotImplementedError

    def reads(self, plan, template) -> list[str] | None:
        """The columns the reduction reads (None: every column)."""
        return getattr(template, "reads", None)

    def prepare(self, plan):
        """What turns a chunk into the reduction's input (None: the chunk itself)."""
        return

    def finish(self, plan, state, dataset: Dataset, prior, learn: bool):
        """The fitted state from the reduced one (merged into ``prior`` when learning)."""
        raise NotImplementedError

    # -- apply: a map -------------------------------------------------------------------
    def transformer(self, fitted, dataset: Dataset, **options):
        """The per-chunk transform (``engine.passes.ChunkTransform``) of ``fitted``."""
        raise NotImplementedError


@dataclass
class Planned:
    """An operation's fit, planned: the work ``fit_together`` does in a shared read."""

    op: Operation
    plan: Any
    template: Any  # the empty reduction (None: nothing to read)
    prior: Any
    learn: bool
    finish_options: dict

    @property
    def reads(self) -> list[str] | None:
        return None if self.template is None else self.op.reads(self.plan, self.template)


def planned(op: Operation, dataset: Dataset, *, prior=None, learn: bool = True,
            **finish_options) -> Planned:
    """Check ``op`` against ``dataset`` and make its empty reduction (reads no rows)."""
    if prior is not None and learn:
        check_unseen(prior.seen, dataset)
    plan = op.plan(dataset, prior)
    return Planned(op, plan, op.reduction(plan, dataset, prior, learn), prior, learn,
                   finish_options)


def fit_together(jobs: list[Planned], dataset: Dataset, executor, *, upstream=None) -> list:
    """The fitted states of several planned operations over ``dataset``, all reduced in
    the same reads (one per pass). With ``prior`` and ``learn`` a job's new partitions
    are merged into it (an update); with ``learn=False`` the prior is used as it is
    (apply without learning; only what applying needs, such as neighbours for fills, is
    read). ``upstream`` turns each chunk as read into the chunk the operations fit on (a
    pipeline's earlier steps); ``dataset``'s schema is then the schema upstream gives.
    """
    live = [j for j in jobs if j.template is not None]
    reduced = {}
    if live:
        stack = Stacked([j.template for j in live], [j.op.prepare(j.plan) for j in live],
                        [j.reads for j in live])
        chunk_rows = live[0].op.params.chunk_rows
        state = reduce(dataset.partitions, stack, executor, chunk_rows=chunk_rows,
                       prepare=upstream, label="+".join(j.op.name for j in live),
                       read_all=upstream is not None)
        reduced = {id(j): s for j, s in zip(live, state.states)}
    return [j.op.finish(j.plan, reduced.get(id(j)), dataset, j.prior, j.learn,
                        **j.finish_options) for j in jobs]


def fit(op: Operation, dataset: Dataset, executor, *, prior=None, learn: bool = True,
        upstream=None, **finish_options):
    """Plan, reduce, finish: the fitted state of ``op`` over ``dataset`` (see
    ``fit_together``)."""
    job = planned(op, dataset, prior=prior, learn=learn, **finish_options)
    return fit_together([job], dataset, executor, upstream=upstream)[0]
