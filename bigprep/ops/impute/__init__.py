"""Out-of-core imputation: strategies, fitted state, apply."""
