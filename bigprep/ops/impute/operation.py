"""``impute`` as an operation: its parameters, declared once, and its passes."""

from __future__ import annotations

from pydantic import Field, field_validator

from ...io.dataset import Dataset
from ..base import Compression, Operation, Params, register
from . import fit as fitting
from .apply import ImputeTransform
from .strategies import parse_chain


class ImputeParams(Params):
    strategy: str | None = Field(
        None, description="Strategy (chain) for every column with nulls it can serve: "
        "constant:V, mean, median, mode, ffill, bfill, interpolate, comma-chained. Default: "
        "mean for numeric columns, mode for the others.")
    columns: dict[str, str] | None = Field(
        None, description="Strategy (chain) per column; with `strategy` unset only these "
        "columns are imputed.")
    group_by: str | None = Field(None, description="ffill/bfill/interpolate within groups.")
    order_by: str | None = Field(
        None, description="Rows are ordered by this column (checked, not sorted); "
        "interpolate uses its values.")
    add_indicator: bool = Field(False, description="Add a boolean COLUMN__missing per "
                                "imputed column.")
    keep_clean: bool = Field(False, description="Also learn the statistics of columns "
                             "without nulls, for later data that has some.")
    compression: Compression = Field("zstd", description="Parquet compression of the output.")

    @field_validator("strategy")
    @classmethod
    def _chain(cls, value):
        if value is not None:
            parse_chain(value, "`strategy`")
        return value


@register
class Impute(Operation):
    name = "impute"
    title = "impute"
    Params = ImputeParams

    def plan(self, dataset: Dataset, prior):
        return fitting.plan(self.params, dataset, prior)

    def reduction(self, plan, dataset, prior, learn):
        return fitting.reduction(self.params, plan, dataset, prior, learn)

    def finish(self, plan, state, dataset, prior, learn, **_):
        fitted = fitting.finish(self.params, plan, state, dataset, prior, learn)
        fitted.skipped = dict(plan.skipped)
        return fitted

    def transformer(self, fitted, dataset: Dataset, **_) -> ImputeTransform:
        return ImputeTransform.of(fitted, dataset, self.params)
