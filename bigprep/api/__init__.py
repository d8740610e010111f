"""The Python API: scikit-learn-shaped estimators over the operations."""
