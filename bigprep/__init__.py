"""bigprep: prepare Parquet data that is too large for memory.

The Python API mirrors the commands, in scikit-learn's shape. Names load on first
use (a command line run imports only what it needs), and ``dir(bigprep)`` lists them:

>>> import bigprep
>>> sorted(bigprep.__all__)[:4]
['BigprepError', 'Executor', 'Imputer', 'SGDModel']
>>> bigprep.Imputer.__name__
'Imputer'
"""

import importlib

from .version import __version__ as __version__

_WHERE = {"Imputer": "api.imputer", "SGDModel": "api.models", "TfidfVectorizer": "api.text",
          "profile": "api.profile", "Executor": "engine.executor", "BigprepError": "errors"}
__all__ = ["BigprepError", "Executor", "Imputer", "SGDModel", "TfidfVectorizer", "profile"]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'bigprep' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
