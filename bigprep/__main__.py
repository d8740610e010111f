"""``python -m bigprep``: the command line."""

from bigprep.entry import run

run()
