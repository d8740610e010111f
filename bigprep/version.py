"""The package version, in the lowest layer so every layer may read it."""

__version__ = "0.2.0"
