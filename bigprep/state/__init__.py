"""Mergeable states: the protocol and registry, and every family (imported here so the
registry and the strategies are complete once ``bigprep.state`` is)."""

from . import composite, counts, metrics, moments, quantile, runs  # noqa: F401
from .protocol import REGISTRY, STATISTICS  # noqa: F401
