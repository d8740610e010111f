"""Mergeable states: the protocol and registry (protocol.py), and the families. The
families that define imputation strategies are imported here, so the strategies are
complete once ``bigprep.state`` is; the others register when their users import them."""

from . import counts, moments, quantile  # noqa: F401 - they register the statistics
from .protocol import REGISTRY, STATISTICS  # noqa: F401
