"""One exception type for every problem a user can fix.

Every message names the file, column or parameter, what was expected, what was
found, and the fix. A parameter is written in backticks (`` `order_by` ``): the
Python API shows its name (``order_by``), the CLI its flag (``--order-by``), so the
library states each problem once and never speaks in flags.

>>> err = BigprepError("`order_by` ts: the column is text; it must hold numbers.")
>>> str(err)
'order_by ts: the column is text; it must hold numbers.'
>>> err.render({"order_by": "--order-by"})
'--order-by ts: the column is text; it must hold numbers.'
"""

from __future__ import annotations

import re

_PARAM = re.compile(r"`(\w+)`")


class BigprepError(Exception):
    """A problem with the input or the options, explained for the user. ``partition``:
    the input file it lies in, when it lies in one (a pipeline's ``keep_going`` records
    that partition as failed and goes on)."""

    def __init__(self, message: str, partition: str | None = None):
        super().__init__(message)
        self.raw = message
        self.partition = partition

    def __str__(self) -> str:
        return self.render({})

    def render(self, names) -> str:
        """The message with each `param` spelled as ``names`` says: a mapping (names it
        lacks stay as they are) or a function of the name."""
        spell = names if callable(names) else lambda name: names.get(name, name)
        return _PARAM.sub(lambda m: spell(m[1]), self.raw)

    @property
    def param(self) -> str | None:
        """The parameter the message names first (None if it names none).

        >>> BigprepError("`min_df` 3.5: a count of documents.").param
        'min_df'
        """
        found = _PARAM.search(self.raw)
        return found[1] if found else None

    def __reduce__(self):  # keeps the raw text across processes (Dask workers)
        return type(self), (self.raw,), {"partition": self.partition}


def in_partition(err: BigprepError, path: str) -> BigprepError:
    """``err``, marked as lying in the partition ``path`` (unless it names one already)."""
    if err.partition is None:
        err.partition = path
    return err


class UsageError(BigprepError):
    """A parameter value that can never work (an unknown name, a malformed value): the
    command line exits with 2, as for any usage error, instead of 1 (a data problem)."""
