"""bigprep: prepare Parquet data that is too large for memory."""

__version__ = "0.1.0"
