"""The ``bigprep`` command line: thin click commands over the Python API.

Commands parse options, call ``bigprep.Imputer`` / ``TfidfVectorizer`` / ``SGDModel``
and report; they do no arithmetic and are the only place that knows flags.
"""

from __future__ import annotations

import click

from .impute import impute, profile
from .models import evaluate, predict, train
from .tfidf import tfidf


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bigprep")
def main():
    """Prepare Parquet data that is too large for memory.

    \b
    Example:
      bigprep impute 'data/*.parquet' --out cleaned/
      bigprep profile data/
      bigprep tfidf fit 'docs/*.parquet' --text-column body --state tfidf.json
    """


for command in (impute, profile, tfidf, train, predict, evaluate):
    main.add_command(command)

if __name__ == "__main__":
    main()
