"""bigprep: prepare Parquet data that is too large for memory.

The Python API mirrors the commands, in scikit-learn's shape:

>>> import bigprep
>>> sorted(bigprep.__all__)[:4]
['BigprepError', 'Executor', 'Imputer', 'SGDModel']
"""

from .api.imputer import Imputer
from .api.models import SGDModel
from .api.profile import profile
from .api.text import TfidfVectorizer
from .engine.executor import Executor
from .errors import BigprepError
from .version import __version__ as __version__

__all__ = ["BigprepError", "Executor", "Imputer", "SGDModel", "TfidfVectorizer", "profile"]
