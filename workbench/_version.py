"""The package version, read by provenance records."""

__version__ = "0.1.0"
