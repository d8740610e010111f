"""Shared fixtures."""

import numpy as np
import pytest

from bigprep import Executor


@pytest.fixture
def executor():
    return Executor()


@pytest.fixture
def rng():
    return np.random.default_rng(7)
