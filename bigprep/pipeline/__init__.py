"""Scheduled batch pipelines: a YAML spec of steps, run over the partitions not done yet."""

from .run import RunReport, run_pipeline
from .spec import Spec, load_spec

__all__ = ["RunReport", "Spec", "load_spec", "run_pipeline"]
