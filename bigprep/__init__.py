"""bigprep: prepare Parquet data that is too large for memory.

The Python API mirrors the commands; names load on first use:

>>> import bigprep
>>> bigprep.tfidf.fit.__name__, bigprep.TfidfState.__name__
('fit', 'TfidfState')
"""

__version__ = "0.1.0"

_NAMES = {
    "impute_files": ("bigprep.impute.job", "impute"),
    "ImputeState": ("bigprep.impute.fit", "ImputeState"),
    "profile": ("bigprep.profile", "profile"),
    "tfidf": ("bigprep.text.tfidf", None),
    "TfidfState": ("bigprep.text.tfidf", "TfidfState"),
    "TfidfParams": ("bigprep.text.tfidf", "TfidfParams"),
    "train": ("bigprep.models.train", "train"),
    "predict": ("bigprep.models.train", "predict"),
    "evaluate": ("bigprep.models.train", "evaluate"),
    "Executor": ("bigprep.executor", "Executor"),
    "BigprepError": ("bigprep.errors", "BigprepError"),
}


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module 'bigprep' has no attribute {name!r}")
    import importlib

    module, attribute = _NAMES[name]
    loaded = importlib.import_module(module)
    return loaded if attribute is None else getattr(loaded, attribute)
