"""One exception type for every problem a user can fix.

The CLI prints ``str(error)`` and exits non-zero without a traceback, so every
message names the file or column, what was expected, what was found, and the fix.
"""


class BigprepError(Exception):
    """A problem with the input or the options, explained for the user."""
