"""partial_fit models over Parquet partitions: features, training, prediction, metrics."""
