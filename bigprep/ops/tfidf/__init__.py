"""Text: incremental TF-IDF over Parquet partitions."""
